package wasmhost_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wasmkube/wasmkube/sandbox/network"
	"github.com/wasmkube/wasmkube/sandbox/network/networktest"
	"github.com/wasmkube/wasmkube/sandbox/wasmhost"
)

// TestPreloadEnter: a sandbox started ahead of its pod, with the module of
// an image preloaded at the lowest priority, moves into a network
// namespace made by the test at normal priority. The container made from
// the preloaded module listens in that namespace only, the process's own
// namespace is that one, and once a container exists the sandbox refuses
// to move again.
func TestPreloadEnter(t *testing.T) {
	a := build(t)
	sb, c := startSandbox(t, a, "--preload-module", a.app, "--preload-digest", appDigest)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	nsPath := networktest.Netns(t)

	if err := c.Enter(ctx, filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("entering a namespace that does not exist succeeded")
	}
	pid := sb.cmd.Process.Pid
	if nices := threadNices(t, pid); len(nices) < 2 || slices.ContainsFunc(nices, func(n int) bool { return n != 19 }) {
		t.Errorf("nice values of the waiting sandbox's threads: %v, want all 19; log:\n%s", nices, sb.stderr.String())
	}
	if err := c.Enter(ctx, nsPath); err != nil {
		t.Fatalf("enter: %v", err)
	}
	if nices := threadNices(t, pid); slices.ContainsFunc(nices, func(n int) bool { return n != 0 }) {
		t.Errorf("nice values of the sandbox's threads after Enter: %v, want all 0", nices)
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

// threadNices are the nice values of process pid's threads.
func threadNices(t *testing.T, pid int) []int {
	t.Helper()
	stats, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, st := range stats {
		b, err := os.ReadFile(st)
		if err != nil {
			t.Fatal(err)
		}
		// Fields after the command name, which is in parentheses: nice
		// is the 19th field of the line, the 17th after ")".
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		n, err := strconv.Atoi(f[16])
		if err != nil {
			t.Fatalf("%s: %v", st, err)
		}
		out = append(out, n)
	}
	return out
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
