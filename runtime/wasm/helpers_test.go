package wasm

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"

	"github.com/wasmkube/wasmkube/internal/syncbuf"
	"github.com/wasmkube/wasmkube/runtime/wasm/wasisock"
)

// guests builds the testdata programs for wasip1, each once per test
// binary, and shares one compilation cache between the tests, so that each
// module is also compiled once.
type guests struct {
	dir string

	mu    sync.Mutex
	built map[string][]byte
}

// shared is set up by TestMain before any test runs and only read after.
var shared *guests

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "wasmrun")
	if err != nil {
		panic(err)
	}
	shared = &guests{dir: dir, built: map[string][]byte{}}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// buildGuest builds testdata/<name> with GOOS=wasip1 GOARCH=wasm and
// returns the module's bytes.
func buildGuest(t *testing.T, name string) []byte {
	t.Helper()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if bin, ok := shared.built[name]; ok {
		return bin
	}
	_, self, _, _ := runtime.Caller(0)
	out := filepath.Join(shared.dir, "bin", name+".wasm")
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, ".")
	cmd.Dir = filepath.Join(filepath.Dir(self), "testdata", name)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=wasip1", "GOARCH=wasm")
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build testdata/%s for wasip1: %v\n%s", name, err, msg)
	}
	bin, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	shared.built[name] = bin
	return bin
}

// compileGuest builds and compiles testdata/<name> in a Runtime on the
// tests' shared cache directory, with the guest's name as its digest.
func compileGuest(t *testing.T, name string, opts ...CompileOption) *Module {
	t.Helper()
	bin := buildGuest(t, name)
	rt := New(WithCacheDir(filepath.Join(shared.dir, "cache")))
	t.Cleanup(func() { rt.Close(context.Background()) })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	m, err := rt.Compile(ctx, "sha256:test-"+name, bin, opts...)
	if err != nil {
		t.Fatalf("compile %s: %v", name, err)
	}
	t.Cleanup(func() { m.Close(context.Background()) })
	return m
}

// compileBare compiles bin with wazero alone, the socket host functions
// instantiated beside it, for tests of what this package does to a
// compiled module. The runtime is closed when the test ends.
func compileBare(t *testing.T, bin []byte) (wazero.Runtime, wazero.CompiledModule) {
	t.Helper()
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	t.Cleanup(func() { rt.Close(ctx) })
	if _, err := wasisock.Instantiate(ctx, rt); err != nil {
		t.Fatal(err)
	}
	compiled, err := rt.CompileModule(ctx, bin)
	if err != nil {
		t.Fatal(err)
	}
	return rt, compiled
}

// output is a Run's stdout and stderr.
type output struct{ stdout, stderr syncbuf.Buffer }

func (o *output) opts() []RunOption {
	return []RunOption{WithStdout(&o.stdout), WithStderr(&o.stderr)}
}

// run runs m to its end with a generous timeout, failing the test if the
// instance cannot start.
func run(t *testing.T, m *Module, opts ...RunOption) (Result, *output) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var o output
	res, err := m.Run(ctx, append(o.opts(), opts...)...)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	return res, &o
}
