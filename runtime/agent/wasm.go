package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/wasmkube/wasmkube/runtime/images"
	"github.com/wasmkube/wasmkube/runtime/wasmpod"
)

// sandboxBinaryName is the executable that hosts a pod's wasm containers.
const sandboxBinaryName = "wasmkube-sandbox"

// DefaultWarmSandboxes is how many wasm sandboxes a node keeps started
// ahead of their pods: one for each of the two images started last.
const DefaultWarmSandboxes = 2

// sandboxBinary finds the wasm sandbox executable: the configured one, or
// the one beside the agent's own executable (as make build leaves them),
// or one in PATH. Without it the node runs OCI containers only.
func sandboxBinary(configured string) (string, error) {
	if configured != "" {
		if _, err := os.Stat(configured); err != nil {
			return "", fmt.Errorf("--sandbox-binary: %w", err)
		}
		return configured, nil
	}
	if exe, err := os.Executable(); err == nil {
		beside := filepath.Join(filepath.Dir(exe), sandboxBinaryName)
		if _, err := os.Stat(beside); err == nil {
			return beside, nil
		}
	}
	p, err := exec.LookPath(sandboxBinaryName)
	if err != nil {
		return "", fmt.Errorf("%s is neither beside the agent's executable nor in PATH (make build builds it; --sandbox-binary names it): %w", sandboxBinaryName, err)
	}
	return p, nil
}

// newWasmRuntime starts the wasm runtime, adopting the sandboxes an
// earlier agent left, unless unavailable says why the node has none.
func newWasmRuntime(ctx context.Context, unavailable error, sandboxBin string, store *images.Store, cfg Config, dir string) (*wasmpod.Runtime, error) {
	if unavailable != nil {
		return nil, unavailable
	}
	rt, err := wasmpod.New(ctx, wasmpod.Config{
		Dir: wasmDir(dir), SandboxBinary: sandboxBin, Modules: wasmModules{store: store, dir: wasmModulesDir(dir)},
		LogRotation: logRotation(cfg), WarmSandboxes: cfg.WarmSandboxes, Log: cfg.Log,
	})
	if err != nil {
		cfg.Log.Error("agent: this node runs no wasm containers", "err", err)
		return nil, err
	}
	return rt, nil
}

// wasmDir and wasmModulesDir are the wasm runtime's directories under the
// data directory.
func wasmDir(dir string) string        { return filepath.Join(dir, "wasm") }
func wasmModulesDir(dir string) string { return filepath.Join(wasmDir(dir), "modules") }

// wasmModules finds containers' wasm modules in the node's image store.
type wasmModules struct {
	store *images.Store
	dir   string
}

func (m wasmModules) WasmModule(ctx context.Context, image string, command, args []string) (wasmpod.Module, bool, error) {
	return m.store.WasmModule(ctx, image, command, args, m.dir)
}

// forgetWasmImage removes what the wasm runtime kept of an image the
// image garbage collector removed: its extracted modules and compiled code.
func forgetWasmImage(store *images.Store, rt *wasmpod.Runtime, dir, digest string) error {
	err := store.RemoveWasmModules(wasmModulesDir(dir), digest)
	if rt != nil {
		err = errors.Join(err, rt.ForgetImage(digest))
	}
	return err
}
