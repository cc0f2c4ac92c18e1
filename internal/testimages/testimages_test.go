package testimages

import (
	"archive/tar"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
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
	rc := onlyLayer(t, img)
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
	ref := "example.test/hello:v2"
	cf, err := readOCIArchive(t, BuildHelloOCIArchive(t, ref), ref).ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(cf.Config.Entrypoint, " "); got != HelloBinary {
		t.Errorf("entrypoint = %q, want %q", got, HelloBinary)
	}
}

// TestHelloBinaryServes runs the binary the images carry, so an image test
// that fails later is not chasing a broken workload.
func TestHelloBinaryServes(t *testing.T) {
	bin := BuildHelloBinary(t)
	if out, err := exec.Command("file", bin).Output(); err == nil && !strings.Contains(string(out), "statically linked") {
		t.Errorf("hello binary is not static: %s", out)
	}
	if _, body := startHello(t, bin); !strings.HasPrefix(body, "hello from ") {
		t.Fatalf("body = %q", body)
	}
}

// startHello runs the hello binary bin on a free loopback port with env
// added, and returns its process and its first answer once it answers.
func startHello(t *testing.T, bin string, env ...string) (*os.Process, string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cmd := exec.Command(bin)
	cmd.Env = append([]string{"HELLO_ADDR=" + addr}, env...)
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
			return cmd.Process, string(body)
		}
		if ctx.Err() != nil {
			t.Fatalf("hello server (env %q) did not answer: %v", env, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
