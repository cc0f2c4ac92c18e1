package server

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/wasmkube/wasmkube/runtime/wasm"
)

// Compile compiles the module of image digest into the compilation cache
// in cacheDir, once, so that the sandboxes of the image load it rather than
// each compiling it: run in a short-lived process, the compiler's memory
// goes with it.
func Compile(ctx context.Context, modulePath, digest, cacheDir string) (err error) {
	if cacheDir == "" {
		return errors.New("compile: a cache directory is required")
	}
	bin, err := os.ReadFile(modulePath)
	if err != nil {
		return fmt.Errorf("read module: %w", err)
	}
	rt := wasm.New(wasm.WithCacheDir(cacheDir))
	defer func() { err = errors.Join(err, rt.Close(context.WithoutCancel(ctx))) }()
	m, err := rt.Compile(ctx, digest, bin)
	if err != nil {
		return err
	}
	return m.Close(ctx)
}
