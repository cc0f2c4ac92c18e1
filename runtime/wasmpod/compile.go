package wasmpod

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
)

// compiler compiles each image's module once, in a short-lived
// `wasmkube-sandbox compile`, so that the sandboxes load compiled code
// from the shared cache instead of compiling it each: a Go net/http module
// takes seconds and a hundred megabytes to compile, which neither the
// agent's heap nor twenty sandboxes starting at once should pay.
type compiler struct {
	binary, cacheDir string

	mu    sync.Mutex
	locks map[string]*sync.Mutex // by image digest
}

func newCompiler(binary, cacheDir string) *compiler {
	return &compiler{binary: binary, cacheDir: cacheDir, locks: map[string]*sync.Mutex{}}
}

// cacheKey is digest as one path element, as runtime/wasm names the
// digest's directory in the cache.
func cacheKey(digest string) string {
	return strings.NewReplacer(":", "-", "/", "_").Replace(digest)
}

// doneMarker says that m's image was compiled into the cache.
func (c *compiler) doneMarker(digest string) string {
	return filepath.Join(c.cacheDir, cacheKey(digest)+".done")
}

func (c *compiler) compile(ctx context.Context, m Module) error {
	c.mu.Lock()
	l, ok := c.locks[m.ImageDigest]
	if !ok {
		l = &sync.Mutex{}
		c.locks[m.ImageDigest] = l
	}
	c.mu.Unlock()
	l.Lock()
	defer l.Unlock()
	marker := c.doneMarker(m.ImageDigest)
	if _, err := os.Stat(marker); err == nil {
		return nil
	}
	cmd := exec.CommandContext(ctx, c.binary, "compile", "--module", m.Path, "--digest", m.ImageDigest, "--cache-dir", c.cacheDir)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("compile the module of image %s: %w: %s", m.ImageDigest, err, strings.TrimSpace(string(out)))
	}
	if err := os.WriteFile(marker, nil, 0o600); err != nil {
		return fmt.Errorf("compile the module of image %s: %w", m.ImageDigest, err)
	}
	return nil
}

// forget drops an image's compiled code, once the image is gone.
func (c *compiler) forget(digest string) error {
	if err := os.Remove(c.doneMarker(digest)); err != nil && !os.IsNotExist(err) {
		return err
	}
	return os.RemoveAll(filepath.Join(c.cacheDir, cacheKey(digest)))
}
