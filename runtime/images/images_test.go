package images

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd"
	introspection "github.com/containerd/containerd/api/services/introspection/v1"
	"github.com/containerd/containerd/namespaces"
	"google.golang.org/genproto/googleapis/rpc/status"

	"github.com/wasmkube/wasmkube/internal/testimages"
	"github.com/wasmkube/wasmkube/runtime/containerd/containerdtest"
)

// startContainerd runs a private containerd for one test.
func startContainerd(t *testing.T) *containerd.Client { return containerdtest.Start(t, "") }

func TestImportListDockerAndOCIArchives(t *testing.T) {
	cl := startContainerd(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	cases := []struct {
		format, ref, archive string
	}{
		{"docker", "example.test/hello:docker", testimages.BuildHelloImage(t, "example.test/hello:docker")},
		{"oci", "example.test/hello:oci", testimages.BuildHelloOCIArchive(t, "example.test/hello:oci")},
	}
	for _, c := range cases {
		f, err := os.Open(c.archive)
		if err != nil {
			t.Fatal(err)
		}
		var progress bytes.Buffer
		imgs, err := Import(ctx, cl, f, &progress)
		f.Close()
		if err != nil {
			t.Fatalf("import %s archive: %v", c.format, err)
		}
		if len(imgs) != 1 || imgs[0].Name != c.ref {
			t.Fatalf("import %s archive: images %+v, want one named %s", c.format, imgs, c.ref)
		}
		if !strings.Contains(progress.String(), "in total") || !strings.Contains(progress.String(), "unpacking "+c.ref) {
			t.Errorf("import %s archive: progress output %q", c.format, progress.String())
		}
		t.Logf("%s: %s", c.format, strings.ReplaceAll(progress.String(), "\n", "; "))
	}

	// Importing again replaces the name's target instead of failing.
	f, err := os.Open(cases[0].archive)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Import(ctx, cl, f, nil); err != nil {
		t.Fatalf("second import: %v", err)
	}
	f.Close()

	imgs, err := List(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, img := range imgs {
		names = append(names, img.Name)
	}
	if strings.Join(names, ",") != "example.test/hello:docker,example.test/hello:oci" {
		t.Fatalf("List = %v", names)
	}

	for ref, want := range map[string]bool{
		"example.test/hello:oci": true, "example.test/hello:nope": false,
		"hello:docker": false, // normalizes to docker.io/library/hello:docker
	} {
		got, err := Present(ctx, cl, ref)
		if err != nil || got != want {
			t.Errorf("Present(%s) = %v, %v; want %v", ref, got, err, want)
		}
	}

	sums, err := Summaries(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range sums {
		if !s.Unpacked || s.Size <= 0 || s.Digest == "" {
			t.Errorf("summary %+v: want unpacked, with a size and digest", s)
		}
	}

	// The images live in our namespace only.
	other, err := cl.ImageService().List(namespaces.WithNamespace(ctx, "default"))
	if err != nil {
		t.Fatal(err)
	}
	if len(other) != 0 {
		t.Errorf("images leaked into the default namespace: %v", other)
	}
}

func TestImportRejectsGarbage(t *testing.T) {
	cl := startContainerd(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := Import(ctx, cl, strings.NewReader("this is not a tar archive"), nil); err == nil {
		t.Fatal("importing garbage succeeded")
	}
}

func TestPullUnreachableRegistryFailsFast(t *testing.T) {
	cl := startContainerd(t)
	const ref = "127.0.0.1:1/wasmkube/hello:v1"
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	_, err := Pull(ctx, cl, ref)
	elapsed := time.Since(start)
	if err == nil {
		t.Fatalf("pull from an unreachable registry succeeded")
	}
	t.Logf("pull error after %v: %v", elapsed.Round(time.Millisecond), err)
	if !strings.Contains(err.Error(), ref) {
		t.Errorf("error %q does not name the reference %s", err, ref)
	}
	if elapsed > 10*time.Second {
		t.Errorf("pull took %v to fail; it should fail at once on a refused connection", elapsed)
	}
	if _, err := Pull(ctx, cl, "Not A Reference"); err == nil || !strings.Contains(err.Error(), "Not A Reference") {
		t.Errorf("pull of an invalid reference: err = %v", err)
	}
}

func TestPickSnapshotterFallsBackToNative(t *testing.T) {
	plugin := func(id string, broken bool) *introspection.Plugin {
		p := &introspection.Plugin{Type: snapshotterPluginType, ID: id}
		if broken {
			p.InitErr = &status.Status{Message: "not supported"}
		}
		return p
	}
	for _, c := range []struct {
		plugins []*introspection.Plugin
		want    string
	}{
		{[]*introspection.Plugin{plugin("native", false), plugin("overlayfs", false)}, SnapshotterOverlay},
		{[]*introspection.Plugin{plugin("native", false), plugin("overlayfs", true)}, SnapshotterNative},
		{[]*introspection.Plugin{plugin("native", false)}, SnapshotterNative},
	} {
		got, err := pickSnapshotter(c.plugins)
		if err != nil || got != c.want {
			t.Errorf("pickSnapshotter = %q, %v; want %q", got, err, c.want)
		}
	}
	if _, err := pickSnapshotter([]*introspection.Plugin{plugin("overlayfs", true)}); err == nil {
		t.Error("pickSnapshotter with no usable snapshotter succeeded")
	}
}

func TestHumanBytes(t *testing.T) {
	for n, want := range map[int64]string{-1: "-", 0: "0 B", 1023: "1023 B", 1536: "1.5 KiB", 5 << 20: "5.0 MiB"} {
		if got := HumanBytes(n); got != want {
			t.Errorf("HumanBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestNormalizeOCIName(t *testing.T) {
	for in, want := range map[string]string{
		"v1":                   "docker.io/library/import:v1",
		"hello:v1":             "docker.io/library/hello:v1",
		"example.test/hello:1": "example.test/hello:1",
		"Bad Name":             "",
	} {
		if got := normalizeOCIName(in); got != want {
			t.Errorf("normalizeOCIName(%q) = %q, want %q", in, got, want)
		}
	}
}
