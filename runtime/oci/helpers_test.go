package oci

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/wasmkube/wasmkube/sandbox/network/networktest"

	"github.com/containerd/containerd"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/wasmkube/wasmkube/internal/testimages"
	"github.com/wasmkube/wasmkube/runtime/containerd/containerdtest"
	"github.com/wasmkube/wasmkube/runtime/images"
	"github.com/wasmkube/wasmkube/sandbox/ipam"
	"github.com/wasmkube/wasmkube/sandbox/network"
)

const (
	helloRef = "docker.io/library/wko-hello:test"
	toolRef  = "docker.io/library/wko-tool:test"
)

// testEnv is one private containerd with both test images imported, and a
// Runtime on it.
type testEnv struct {
	client *containerd.Client
	rt     *Runtime
	dir    string // short scratch dir, for logs
}

// newEnv fails rather than skips when containerd or root is missing: the
// node cannot run containers without them, and a skip would hide that.
func newEnv(t *testing.T) *testEnv {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("these tests run containers and need root")
	}
	// Short, because containerd's socket path must fit a unix address.
	dir, err := os.MkdirTemp("/tmp", "wko")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	cl := containerdtest.Start(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	for _, archive := range []string{testimages.BuildHelloImage(t, helloRef), buildToolImage(t, toolRef)} {
		f, err := os.Open(archive)
		if err != nil {
			t.Fatal(err)
		}
		_, err = images.Import(ctx, cl, f, nil)
		f.Close()
		if err != nil {
			t.Fatalf("import %s: %v", archive, err)
		}
	}
	// A cgroup parent of the test's own, removed at the end, so the test
	// leaves nothing in the machine's cgroup trees.
	parent := "/" + filepath.Base(dir)
	t.Cleanup(func() { removeCgroupParent(t, parent) })
	rt := New(cl, WithLogDir(filepath.Join(dir, "logs")), WithFIFODir(filepath.Join(dir, "fifo")), WithCgroupParent(parent))
	t.Cleanup(func() {
		rt.Close()
		// Runs after every container's Remove: their FIFOs must be gone.
		if left, _ := os.ReadDir(rt.fifoDir); len(left) != 0 {
			t.Errorf("%d FIFO dirs left under %s", len(left), rt.fifoDir)
		}
	})
	return &testEnv{client: cl, rt: rt, dir: dir}
}

// removeCgroupParent removes the (by now empty) parent cgroup from every
// hierarchy runc may have made it in: each v1 controller, the named systemd
// one, and cgroup2.
func removeCgroupParent(t *testing.T, parent string) {
	t.Helper()
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Error(err)
		return
	}
	for _, line := range strings.Split(string(data), "\n") {
		sep := strings.Index(line, " - ")
		if sep < 0 {
			continue
		}
		pre, post := strings.Fields(line[:sep]), strings.Fields(line[sep+3:])
		if len(pre) < 5 || len(post) < 1 || (post[0] != "cgroup" && post[0] != "cgroup2") {
			continue
		}
		p := filepath.Join(pre[4], parent)
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Errorf("remove cgroup %s: %v", p, err)
		}
	}
}

// removeOnCleanup removes the container at the end of the test whatever
// state the test left it in.
func (e *testEnv) removeOnCleanup(t *testing.T, id string) {
	t.Helper()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := e.rt.Remove(ctx, id); err != nil {
			t.Errorf("cleanup %s: %v", id, err)
		}
	})
}

// buildToolImage builds testdata/tool into a one-layer image whose
// ENTRYPOINT is /tool and CMD is ["args", "from-cmd"], so the Kubernetes
// command/args rules show in what it prints.
func buildToolImage(t *testing.T, ref string) string {
	t.Helper()
	_, self, _, _ := runtime.Caller(0)
	bin := filepath.Join(t.TempDir(), "tool")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, ".")
	cmd.Dir = filepath.Join(filepath.Dir(self), "testdata", "tool")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build tool: %v\n%s", err, out)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: "tool", Mode: 0o755, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	tw.Write(data)
	tw.Close()
	layerBytes := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerBytes)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		t.Fatal(err)
	}
	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err := mutate.AppendLayers(base, layer)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	cf.Config.Entrypoint = []string{"/tool"}
	cf.Config.Cmd = []string{"args", "from-cmd"}
	cf.Config.Env = []string{"PATH=/", "FROM_IMAGE=image"}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	tag, err := name.NewTag(ref)
	if err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(t.TempDir(), "tool.tar")
	if err := tarball.WriteToFile(archive, tag, img); err != nil {
		t.Fatal(err)
	}
	return archive
}

// testNet is a bridge of the test's own with pod sandboxes on it.
type testNet struct {
	bridge   string
	netnsDir string
	alloc    *ipam.Allocator
	suffix   string
}

func newTestNet(t *testing.T, dir string) *testNet {
	t.Helper()
	suffix := networktest.RandHex(t, 3)
	n := &testNet{bridge: "wkt" + suffix, netnsDir: filepath.Join(dir, "netns"), suffix: suffix}
	alloc, err := ipam.New(filepath.Join(dir, "ipam"), networktest.FreeSubnet(t))
	if err != nil {
		t.Fatal(err)
	}
	n.alloc = alloc
	t.Cleanup(func() {
		if err := network.DeleteBridge(n.bridge); err != nil {
			t.Errorf("cleanup bridge: %v", err)
		}
	})
	if err := network.EnsureBridge(n.bridge, alloc.Gateway()); err != nil {
		t.Fatal(err)
	}
	return n
}

// sandbox sets up one pod network and tears it down at the end of the test.
func (n *testNet) sandbox(t *testing.T, name string) *network.Netns {
	t.Helper()
	id := "wko-" + n.suffix + "-" + name
	ip, err := n.alloc.Allocate(id)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := network.Teardown(n.netnsDir, id); err != nil {
			t.Errorf("cleanup sandbox %s: %v", id, err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ns, err := network.Setup(ctx, network.Config{PodID: id, NetnsDir: n.netnsDir, Bridge: n.bridge, IP: ip, Gateway: n.alloc.Gateway().IP})
	if err != nil {
		t.Fatal(err)
	}
	return ns
}
