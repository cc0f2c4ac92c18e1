//go:build linux

// Package wasm_test runs the example guests of examples/wasm under wazero
// with the node's socket layer (runtime/wasm/wasisock), as a pod's sandbox
// does, without a node: host TCP listeners become the guests' preopened
// fds, host directories their volumes, and their outbound connections are
// real host sockets.
package wasm_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/tetratelabs/wazero"

	"github.com/wasmkube/wasmkube/internal/testimages"
	"github.com/wasmkube/wasmkube/runtime/wasm/wasisock"
	"github.com/wasmkube/wasmkube/runtime/wasm/wasisock/wasisocktest"
)

// cache shares compiled guests between the tests of the package.
var cache = wazero.NewCompilationCache()

// built holds each guest's module, compiled once per package run.
var built struct {
	sync.Mutex
	wasm map[string][]byte
}

func guestWasm(t *testing.T, name string) []byte {
	t.Helper()
	built.Lock()
	defer built.Unlock()
	if b, ok := built.wasm[name]; ok {
		return b
	}
	b, err := os.ReadFile(testimages.BuildWasmModule(t, name))
	if err != nil {
		t.Fatal(err)
	}
	if built.wasm == nil {
		built.wasm = map[string][]byte{}
	}
	built.wasm[name] = b
	return b
}

// guestConfig is how a guest runs: its environment, its listeners (fd 3
// and up) and the host directory it sees at a guest path.
type guestConfig struct {
	env               []string
	listeners         []net.Listener
	hostDir, guestDir string
}

// start runs the guest of examples/wasm/<name> until the test ends.
func start(t *testing.T, name string, cfg guestConfig) *wasisocktest.Guest {
	t.Helper()
	wasm := guestWasm(t, name)
	table, err := wasisock.NewTable(cfg.listeners...)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range cfg.listeners {
		l.Close() // the table holds duplicates
	}
	mc := wazero.NewModuleConfig().WithArgs(name).
		WithSysWalltime().WithSysNanotime().WithSysNanosleep()
	for _, kv := range cfg.env {
		k, v, _ := strings.Cut(kv, "=")
		mc = mc.WithEnv(k, v)
	}
	if cfg.hostDir != "" {
		mc = mc.WithFSConfig(wazero.NewFSConfig().WithDirMount(cfg.hostDir, cfg.guestDir))
	}
	return wasisocktest.Start(t, name, wasm, cache, table, mc)
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func get(url string) (string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("%s: %s", resp.Status, b)
	}
	return string(b), err
}

func appendFile(t *testing.T, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
}
