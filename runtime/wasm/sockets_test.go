package wasm

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wasmkube/wasmkube/runtime/wasm/wasisock"
)

// TestSocketsAndPreopens runs a guest that serves HTTP on its listeners
// (fds 3 and 4) and keeps files in a preopened directory, which must come
// after the listeners without shadowing them.
func TestSocketsAndPreopens(t *testing.T) {
	m := compileGuest(t, "volserver")
	var listeners []net.Listener
	for range 2 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		listeners = append(listeners, l)
	}
	table, err := wasisock.NewTable(listeners...)
	if err != nil {
		t.Fatal(err)
	}
	defer table.Close()
	// The guest serves fd 3 only; fd 4 is there to push the preopen to fd 5.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "seed"), []byte("from the host"), 0o644); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var o output
	done := make(chan Result, 1)
	go func() {
		res, err := m.Run(ctx, append(o.opts(), WithSockets(table), WithPreopen(dir, "/data", false))...)
		if err != nil {
			t.Errorf("run: %v", err)
		}
		done <- res
	}()

	base := "http://" + listeners[0].Addr().String()
	do := func(method, path, body string) string {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, method, base+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v (guest stderr %q)", method, path, err, o.stderr.String())
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s %s: %s: %s", method, path, resp.Status, b)
		}
		return string(b)
	}
	if got := do("GET", "/files/seed", ""); got != "from the host" {
		t.Errorf("read through the preopen: %q", got)
	}
	if got := do("PUT", "/files/out", "from the guest"); got != "wrote 14 bytes" {
		t.Errorf("write: %q", got)
	}
	if data, err := os.ReadFile(filepath.Join(dir, "out")); err != nil || string(data) != "from the guest" {
		t.Errorf("host file written by the guest: %q, %v", data, err)
	}
	do("GET", "/quit", "")
	res := <-done
	if res.Termination != Exited || res.ExitCode != 0 {
		t.Errorf("result %+v, want exit 0; stderr %q", res, o.stderr.String())
	}
}
