package wasisock_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"

	"github.com/wasmkube/wasmkube/runtime/wasm/wasisock"
)

func buildServer(t *testing.T) []byte {
	t.Helper()
	out := filepath.Join(t.TempDir(), "httpserver.wasm")
	cmd := exec.Command("go", "build", "-o", out, "./testdata/httpserver")
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build wasip1 server: %v\n%s", err, b)
	}
	wasm, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return wasm
}

func TestGoHTTPServerOnPreopenedListener(t *testing.T) {
	wasm := buildServer(t)

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	table, err := wasisock.NewTable(l)
	if err != nil {
		t.Fatal(err)
	}
	_ = l.Close() // the table holds its own descriptor

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCloseOnContextDone(true))
	defer r.Close(context.Background())
	if _, err := wasisock.Instantiate(ctx, r); err != nil {
		t.Fatal(err)
	}
	compiled, err := r.CompileModule(ctx, wasm)
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	done := make(chan error, 1)
	go func() {
		_, err := r.InstantiateModule(wasisock.WithTable(ctx, table), compiled,
			wazero.NewModuleConfig().WithStderr(&stderr).WithSysWalltime().WithSysNanotime().WithSysNanosleep())
		done <- err
	}()

	base := "http://" + addr
	const clients, requests = 8, 50
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- runClient(base, c, requests)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}

	body := bytes.Repeat([]byte("0123456789abcdef"), 64*1024) // 1 MiB
	resp, err := http.Post(base+"/echo", "application/octet-stream", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("POST /echo: %v (guest stderr: %s)", err, stderr.String())
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || !bytes.Equal(got, body) {
		t.Fatalf("POST /echo: status %d, %d of %d bytes equal=%v, err %v", resp.StatusCode, len(got), len(body), bytes.Equal(got, body), err)
	}
	http.DefaultClient.CloseIdleConnections()

	cancel()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("guest returned without error after cancellation")
		}
	case <-time.After(time.Minute):
		t.Fatal("guest did not stop within a minute of cancellation")
	}
	if err := table.Close(); err != nil {
		t.Fatal(err)
	}
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Fatalf("listener %s still accepts after the guest stopped", addr)
	}
}

// runClient sends its requests over one keep-alive connection.
func runClient(base string, id, n int) error {
	tr := &http.Transport{MaxConnsPerHost: 1}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: time.Minute}
	conns := map[string]bool{}
	for i := 0; i < n; i++ {
		want := fmt.Sprintf("hello %d-%d", id, i)
		req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("%s/hello/%d-%d", base, id, i), nil)
		var local string
		req = req.WithContext(withConnTrace(req.Context(), &local))
		resp, err := hc.Do(req)
		if err != nil {
			return fmt.Errorf("client %d request %d: %w", id, i, err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("client %d request %d: read body: %w", id, i, err)
		}
		if resp.StatusCode != http.StatusOK || string(b) != want {
			return fmt.Errorf("client %d request %d: got %d %q, want 200 %q", id, i, resp.StatusCode, b, want)
		}
		conns[local] = true
	}
	if len(conns) != 1 {
		return fmt.Errorf("client %d used %d connections, want 1 kept alive", id, len(conns))
	}
	return nil
}
