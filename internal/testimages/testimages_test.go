package testimages

import (
	"archive/tar"
	"context"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func TestHelloDockerArchive(t *testing.T) {
	ref := "example.test/hello:v1"
	path := BuildHelloImage(t, ref)
	tag, _ := name.NewTag(ref)
	img, err := tarball.ImageFromPath(path, &tag)
	if err != nil {
		t.Fatalf("read archive back: %v", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(cf.Config.Entrypoint, " "); got != HelloBinary {
		t.Errorf("entrypoint = %q, want %q", got, HelloBinary)
	}
	if cf.OS != "linux" || cf.Architecture == "" {
		t.Errorf("platform = %s/%s", cf.OS, cf.Architecture)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers = %d, %v; want 1", len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	hdr, err := tar.NewReader(rc).Next()
	if err != nil {
		t.Fatal(err)
	}
	if hdr.Name != "hello" || hdr.Mode&0o111 == 0 {
		t.Errorf("layer holds %q mode %o, want executable hello", hdr.Name, hdr.Mode)
	}
}

func TestHelloOCIArchive(t *testing.T) {
	path := BuildHelloOCIArchive(t, "example.test/hello:v2")
	// Unpack to read it with the layout reader, as containerd will see it.
	dir := unpackArchive(t, path)
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatalf("read layout: %v", err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Manifests) != 1 || m.Manifests[0].Annotations[annotationContainerdName] != "example.test/hello:v2" {
		t.Fatalf("index manifests = %+v", m.Manifests)
	}
}

// TestHelloBinaryServes runs the binary the images carry, so an image test
// that fails later is not chasing a broken workload.
func TestHelloBinaryServes(t *testing.T) {
	bin := BuildHelloBinary(t)
	if out, err := exec.Command("file", bin).Output(); err == nil && !strings.Contains(string(out), "statically linked") {
		t.Errorf("hello binary is not static: %s", out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cmd := exec.Command(bin)
	cmd.Env = []string{"HELLO_ADDR=" + addr}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if !strings.HasPrefix(string(body), "hello from ") {
				t.Fatalf("body = %q", body)
			}
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("hello server did not answer: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
