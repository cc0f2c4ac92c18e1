package wasmhost_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wasmkube/wasmkube/internal/syncbuf"
	"github.com/wasmkube/wasmkube/sandbox/wasmhost"
)

// trapModule is a WASI command whose _start executes `unreachable`; Go
// guests cannot trap on purpose.
var trapModule = []byte{
	0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00,
	0x01, 0x04, 0x01, 0x60, 0x00, 0x00,
	0x03, 0x02, 0x01, 0x00,
	0x07, 0x0a, 0x01, 0x06, '_', 's', 't', 'a', 'r', 't', 0x00, 0x00,
	0x0a, 0x05, 0x01, 0x03, 0x00, 0x00, 0x0b,
}

// TestSandbox runs the real sandbox binary with real guests: serving,
// logs, exits, memory, traps, stop, exec, adoption by a new client and
// shutdown.
func TestSandbox(t *testing.T) {
	a := build(t)
	sb, c := startSandbox(t, a)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	logDir := t.TempDir()
	spec := func(id string, argv ...string) wasmhost.ContainerSpec {
		return wasmhost.ContainerSpec{ID: id, Module: a.app, Digest: appDigest, Argv: append([]string{"app"}, argv...),
			Env: []string{"GREETING=hi"}, LogPath: filepath.Join(logDir, id, "0.log"), Labels: map[string]string{"name": id}}
	}
	mustCreateStart := func(s wasmhost.ContainerSpec) {
		t.Helper()
		if err := c.Create(ctx, s); err != nil {
			t.Fatalf("create %s: %v", s.ID, err)
		}
		if err := c.Start(ctx, s.ID); err != nil {
			t.Fatalf("start %s: %v", s.ID, err)
		}
	}

	// A server on its listener, with many keep-alive clients at once.
	port := freePort(t)
	web := spec("web", "serve")
	web.Ports = []wasmhost.Port{{Port: port}}
	mustCreateStart(web)
	waitAccepting(t, port)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
			defer client.CloseIdleConnections()
			for j := range 5 {
				if body, err := get(client, port); err != nil || body != "hello from wasm" {
					t.Errorf("client %d request %d: %q, %v", i, j, body, err)
				}
			}
		})
	}
	wg.Wait()
	if st, err := c.State(ctx, "web"); err != nil || st.Status != wasmhost.Running || st.Pid != sb.cmd.Process.Pid || st.Labels["name"] != "web" {
		t.Errorf("state of web: %+v, %v", st, err)
	}
	if c.Pid() != sb.cmd.Process.Pid {
		t.Errorf("client's pid %d, process %d", c.Pid(), sb.cmd.Process.Pid)
	}

	// The client goes; a new one adopts the running container.
	c.Close()
	c2, err := wasmhost.Dial(ctx, sb.socket)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	c = c2
	list, err := c.List(ctx)
	if err != nil || len(list) != 1 || list[0].ID != "web" || list[0].Status != wasmhost.Running {
		t.Fatalf("list after a new dial: %+v, %v", list, err)
	}
	if err := c.Remove(ctx, "web"); err == nil || !strings.Contains(err.Error(), "running") {
		t.Errorf("remove of a running container: %v", err)
	}
	if _, err := c.State(ctx, "nope"); !isNotFound(err) {
		t.Errorf("state of an unknown container: %v, want ErrNotFound", err)
	}
	if err := c.Start(ctx, "nope"); !isNotFound(err) {
		t.Errorf("start of an unknown container: %v, want ErrNotFound", err)
	}

	// Exec: argv, stdin, output and the exit code of a new instance.
	var out, errOut syncbuf.Buffer
	code, err := c.Exec(ctx, "web", wasmhost.ExecOptions{Argv: []string{"app", "cat", "x y"},
		Stdin: strings.NewReader("line one\nline two\n"), Stdout: &out, Stderr: &errOut})
	if err != nil || code != 3 || out.String() != "argv=[app cat x y]\nline one\nline two\n" {
		t.Errorf("exec: code %d, err %v, stdout %q, stderr %q", code, err, out.String(), errOut.String())
	}

	// Stop: the listener closes, the guest ends by itself within grace.
	if err := c.Stop(ctx, "web", 30*time.Second); err != nil {
		t.Fatal(err)
	}
	st, err := c.State(ctx, "web")
	if err != nil || st.Status != wasmhost.Exited || st.ExitCode != 0 || st.Reason != "Completed" {
		t.Errorf("web after stop: %+v, %v", st, err)
	}
	if conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
		conn.Close()
		t.Errorf("port %d still accepts after stop", port)
	}
	lines := logLines(t, st.LogPath)
	if !slices.Contains(lines, "stdout F serving on fd 3") || !slices.ContainsFunc(lines, func(l string) bool {
		return strings.HasPrefix(l, "stderr F listener closed")
	}) {
		t.Errorf("web's log: %q", lines)
	}

	// A Start of the exited container runs it again in place.
	if err := c.Start(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	waitAccepting(t, port)
	if body, err := get(http.DefaultClient, port); err != nil || body != "hello from wasm" {
		t.Errorf("restarted web: %q, %v", body, err)
	}
	if st, _ := c.State(ctx, "web"); st.Restarts != 1 || st.Status != wasmhost.Running {
		t.Errorf("restarted web: %+v", st)
	}

	// A guest that ignores the closed listener is killed after grace.
	sleepy := spec("sleepy", "sleep")
	sleepy.Ports = []wasmhost.Port{{Port: freePort(t)}}
	mustCreateStart(sleepy)
	waitAccepting(t, sleepy.Ports[0].Port)
	if err := c.Stop(ctx, "sleepy", 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if st, _ := c.State(ctx, "sleepy"); st.ExitCode != 137 || st.Reason != "Error" || !strings.Contains(st.Message, "grace") {
		t.Errorf("sleepy after stop: %+v", st)
	}

	// Exits: Completed, Error, their output in the CRI log.
	mustCreateStart(spec("done", "exit", "0"))
	mustCreateStart(spec("fail", "exit", "3"))
	if st := waitExited(t, c, "done"); st.ExitCode != 0 || st.Reason != "Completed" || st.FinishedAt.Before(st.StartedAt) {
		t.Errorf("done: %+v", st)
	}
	st = waitExited(t, c, "fail")
	if st.ExitCode != 3 || st.Reason != "Error" {
		t.Errorf("fail: %+v", st)
	}
	if lines := logLines(t, st.LogPath); !slices.Contains(lines, "stdout F to stdout") || !slices.Contains(lines, "stderr F to stderr") {
		t.Errorf("fail's log: %q", lines)
	}

	// Memory: a guest over its limit, and a module whose minimum does not
	// fit at all.
	oom := spec("oom", "alloc")
	oom.MemoryLimit = 64 << 20
	mustCreateStart(oom)
	if st := waitExited(t, c, "oom"); st.ExitCode != 137 || !st.OOMKilled() {
		t.Errorf("oom: %+v", st)
	}
	nofit := spec("nofit", "exit", "0")
	nofit.MemoryLimit = 64 << 10
	mustCreateStart(nofit)
	if st := waitExited(t, c, "nofit"); st.ExitCode != 137 || !st.OOMKilled() || !strings.Contains(st.Message, "limit") {
		t.Errorf("nofit: %+v", st)
	}

	// A trap.
	trapPath := filepath.Join(t.TempDir(), "trap.wasm")
	if err := os.WriteFile(trapPath, trapModule, 0o644); err != nil {
		t.Fatal(err)
	}
	mustCreateStart(wasmhost.ContainerSpec{ID: "trap", Module: trapPath, Digest: "sha256:trap", Argv: []string{"trap"}})
	if st := waitExited(t, c, "trap"); st.ExitCode != 134 || st.Reason != "Error" || !strings.Contains(st.Message, "unreachable") {
		t.Errorf("trap: %+v", st)
	}
	if err := c.Remove(ctx, "trap"); err != nil {
		t.Errorf("remove trap: %v", err)
	}
	if _, err := c.State(ctx, "trap"); !isNotFound(err) {
		t.Errorf("state of a removed container: %v", err)
	}

	// Every app module came from the cache the compile command filled.
	if n := strings.Count(sb.stderr.String(), "digest=sha256:app fromCache=true"); n != 5 {
		t.Errorf("%d modules loaded from the cache, want every app container's:\n%s", n, sb.stderr.String())
	}

	// Shutdown waits for the running web, then the process exits 0.
	if err := c.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Create(ctx, spec("late", "exit", "0")); err == nil {
		t.Error("create after shutdown was accepted")
	}
	select {
	case <-sb.exited:
		t.Fatalf("sandbox exited with web running: %v", sb.waitErr)
	case <-time.After(100 * time.Millisecond):
	}
	if err := c.Stop(ctx, "web", 30*time.Second); err != nil {
		t.Fatal(err)
	}
	select {
	case <-sb.exited:
		if sb.waitErr != nil {
			t.Errorf("sandbox exit: %v\n%s", sb.waitErr, sb.stderr.String())
		}
	case <-ctx.Done():
		t.Fatalf("sandbox still runs after shutdown:\n%s", sb.stderr.String())
	}
}
