package wasmhost_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/wasmkube/wasmkube/sandbox/network"
	"github.com/wasmkube/wasmkube/sandbox/network/networktest"
	"github.com/wasmkube/wasmkube/sandbox/wasmhost"
)

// TestPreloadEnter: a sandbox started ahead of its pod, with the module of
// an image preloaded, moves into a network namespace made by the test. The
// container made from the preloaded module listens in that namespace only,
// the process's own namespace is that one, and once a container exists the
// sandbox refuses to move again.
func TestPreloadEnter(t *testing.T) {
	a := build(t)
	sb, c := startSandbox(t, a, "--preload-module", a.app, "--preload-digest", appDigest)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	nsPath := newNetns(t)

	if err := c.Enter(ctx, filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("entering a namespace that does not exist succeeded")
	}
	if err := c.Enter(ctx, nsPath); err != nil {
		t.Fatalf("enter: %v", err)
	}
	if got, want := nsInode(t, fmt.Sprintf("/proc/%d/ns/net", sb.cmd.Process.Pid)), nsInode(t, nsPath); got != want {
		t.Errorf("sandbox process is in netns %d after Enter, want %d", got, want)
	}
	// Every thread, not only the one that served the request.
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/ns/net", sb.cmd.Process.Pid))
	if err != nil || len(tasks) < 2 {
		t.Fatalf("threads of the sandbox: %v, %v", tasks, err)
	}
	for _, task := range tasks {
		if got, want := nsInode(t, task), nsInode(t, nsPath); got != want {
			t.Errorf("%s is netns %d, want %d", task, got, want)
		}
	}

	port := freePort(t)
	spec := wasmhost.ContainerSpec{ID: "web", Module: a.app, Digest: appDigest, Argv: []string{"app", "serve"},
		Ports: []wasmhost.Port{{Port: port}}, LogPath: filepath.Join(t.TempDir(), "web.log")}
	if err := c.Create(ctx, spec); err != nil {
		t.Fatalf("create: %v", err)
	}
	if err := c.Start(ctx, "web"); err != nil {
		t.Fatalf("start: %v", err)
	}
	if !strings.Contains(sb.stderr.String(), "preloaded=true") {
		t.Errorf("the container did not use the preloaded module; sandbox log:\n%s", sb.stderr.String())
	}
	body, err := getIn(nsPath, port)
	if err != nil || body != "hello from wasm" {
		t.Errorf("GET in the pod's namespace: %q, %v", body, err)
	}
	if conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second); err == nil {
		conn.Close()
		t.Errorf("port %d answers in the test's own namespace", port)
	}
	if err := c.Enter(ctx, nsPath); err == nil {
		t.Error("Enter with a container in the sandbox succeeded")
	}
	if err := c.Stop(ctx, "web", time.Second); err != nil {
		t.Fatal(err)
	}
}

// TestPreloadMemoryLimit: the preloaded module takes the container's
// memory limit, which it learns only at create: a guest allocating past it
// ends OOMKilled. A second container of the image, with the preloaded
// module taken, compiles as usual.
func TestPreloadMemoryLimit(t *testing.T) {
	a := build(t)
	sb, c := startSandbox(t, a, "--preload-module", a.app, "--preload-digest", appDigest)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	oom := wasmhost.ContainerSpec{ID: "oom", Module: a.app, Digest: appDigest, Argv: []string{"app", "alloc"}, MemoryLimit: 64 << 20}
	if err := c.Create(ctx, oom); err != nil {
		t.Fatalf("create: %v", err)
	}
	if err := c.Start(ctx, "oom"); err != nil {
		t.Fatalf("start: %v", err)
	}
	if st := waitExited(t, c, "oom"); !st.OOMKilled() || st.ExitCode != 137 {
		t.Errorf("state %+v, want OOMKilled with 137", st)
	}
	again := wasmhost.ContainerSpec{ID: "again", Module: a.app, Digest: appDigest, Argv: []string{"app", "exit", "3"}}
	if err := c.Create(ctx, again); err != nil {
		t.Fatalf("create: %v", err)
	}
	if err := c.Start(ctx, "again"); err != nil {
		t.Fatalf("start: %v", err)
	}
	if st := waitExited(t, c, "again"); st.ExitCode != 3 {
		t.Errorf("state %+v, want exit code 3", st)
	}
	log := sb.stderr.String()
	if !strings.Contains(log, "id=oom digest=sha256:app preloaded=true") || strings.Contains(log, "id=again digest=sha256:app preloaded=true") {
		t.Errorf("want the preloaded module used by oom only; log:\n%s", log)
	}
}

// newNetns makes a network namespace with loopback up, pinned under the
// test's temporary directory, and removes it when the test ends.
func newNetns(t *testing.T) string {
	t.Helper()
	name := "wkt-" + networktest.RandHex(t, 4)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	ns, err := netns.NewNamed(name)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	if err := netns.Set(orig); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = netns.DeleteNamed(name) })
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err == nil {
		err = h.LinkSetUp(lo)
	}
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join("/var/run/netns", name)
}

func nsInode(t *testing.T, path string) uint64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// getIn GETs / on the port of loopback in the namespace at nsPath: the
// connection's socket is made on a thread inside it.
func getIn(nsPath string, port int32) (string, error) {
	var conn net.Conn
	err := network.Do(nsPath, func() error {
		var err error
		conn, err = net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 5*time.Second)
		return err
	})
	if err != nil {
		return "", err
	}
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(context.Context, string, string) (net.Conn, error) { return conn, nil },
	}, Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	return get(client, port)
}

