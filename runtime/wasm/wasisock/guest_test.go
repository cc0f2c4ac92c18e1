package wasisock_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/sys"

	"github.com/wasmkube/wasmkube/internal/syncbuf"
	"github.com/wasmkube/wasmkube/runtime/wasm/wasisock"
)

// The netclient guest is built and compiled once for the whole package.
var netclient struct {
	once  sync.Once
	wasm  []byte
	err   error
	cache wazero.CompilationCache
}

func netclientWasm(t *testing.T) ([]byte, wazero.CompilationCache) {
	t.Helper()
	netclient.once.Do(func() {
		dir, err := os.MkdirTemp("", "wasisock-guest-")
		if err != nil {
			netclient.err = err
			return
		}
		defer os.RemoveAll(dir)
		out := filepath.Join(dir, "netclient.wasm")
		cmd := exec.Command("go", "build", "-o", out, "./testdata/netclient")
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			netclient.err = errors.New("build wasip1 netclient: " + err.Error() + "\n" + string(b))
			return
		}
		netclient.wasm, netclient.err = os.ReadFile(out)
		netclient.cache = wazero.NewCompilationCache()
	})
	if netclient.err != nil {
		t.Fatal(netclient.err)
	}
	return netclient.wasm, netclient.cache
}

// guestRun is one netclient instance running with a table.
type guestRun struct {
	stdout, stderr syncbuf.Buffer
	done           chan error
	cancel         context.CancelFunc
}

// startGuest runs netclient with args and the sockets of table. The table
// is closed when the test ends, after the guest has stopped.
func startGuest(t *testing.T, table *wasisock.Table, args ...string) *guestRun {
	t.Helper()
	wasm, cache := netclientWasm(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	g := &guestRun{done: make(chan error, 1), cancel: cancel}
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCloseOnContextDone(true).WithCompilationCache(cache))
	if _, err := wasisock.Instantiate(ctx, r); err != nil {
		t.Fatal(err)
	}
	compiled, err := r.CompileModule(ctx, wasm)
	if err != nil {
		t.Fatal(err)
	}
	cfg := wazero.NewModuleConfig().WithArgs(append([]string{"netclient"}, args...)...).
		WithStdout(&g.stdout).WithStderr(&g.stderr).
		WithSysWalltime().WithSysNanotime().WithSysNanosleep()
	go func() {
		_, err := r.InstantiateModule(wasisock.WithTable(ctx, table), compiled, cfg)
		var exit *sys.ExitError
		if errors.As(err, &exit) && exit.ExitCode() == 0 {
			err = nil
		}
		g.done <- err
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-g.done:
		case <-time.After(time.Minute):
			t.Error("guest did not stop within a minute of cancellation")
		}
		_ = r.Close(context.Background())
		if err := table.Close(); err != nil {
			t.Error(err)
		}
	})
	return g
}

// wait waits for the guest to exit and returns what it printed; an exit
// other than 0 fails the test.
func (g *guestRun) wait(t *testing.T) string {
	t.Helper()
	select {
	case err := <-g.done:
		g.done <- err // for the cleanup
		if err != nil {
			t.Fatalf("guest: %v\nstdout: %s\nstderr: %s", err, g.stdout.String(), g.stderr.String())
		}
	case <-time.After(2 * time.Minute):
		t.Fatalf("guest still running after 2 minutes\nstdout: %s\nstderr: %s", g.stdout.String(), g.stderr.String())
	}
	return g.stdout.String()
}

// runGuest runs netclient to completion with a fresh table.
func runGuest(t *testing.T, opts []wasisock.TableOption, args ...string) string {
	t.Helper()
	table, err := wasisock.NewTableWithOptions(nil, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return startGuest(t, table, args...).wait(t)
}
