package wasisock_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"

	"github.com/wasmkube/wasmkube/runtime/wasm/wasisock"
	"github.com/wasmkube/wasmkube/runtime/wasm/wasisock/wasisocktest"
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

// startGuest runs netclient with args and the sockets of table. The table
// is closed when the test ends, after the guest has stopped.
func startGuest(t *testing.T, table *wasisock.Table, args ...string) *wasisocktest.Guest {
	t.Helper()
	wasm, cache := netclientWasm(t)
	cfg := wazero.NewModuleConfig().WithArgs(append([]string{"netclient"}, args...)...).
		WithSysWalltime().WithSysNanotime().WithSysNanosleep()
	return wasisocktest.Start(t, "netclient", wasm, cache, table, cfg)
}

// runGuest runs netclient to completion with a fresh table.
func runGuest(t *testing.T, opts []wasisock.TableOption, args ...string) string {
	t.Helper()
	table, err := wasisock.NewTableWithOptions(nil, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return startGuest(t, table, args...).Wait(t, 2*time.Minute)
}
