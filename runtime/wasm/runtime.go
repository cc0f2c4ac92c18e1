package wasm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/tetratelabs/wazero"
)

// magic opens every WebAssembly binary module.
var magic = []byte{0x00, 'a', 's', 'm'}

// IsWasm reports whether data starts with the WebAssembly binary magic
// `\0asm`: the test for whether an image's entrypoint is a wasm module.
func IsWasm(data []byte) bool {
	return bytes.HasPrefix(data, magic)
}

// IsWasmAt is IsWasm on the start of r, for a file not to be read whole.
func IsWasmAt(r io.ReaderAt) bool {
	head := make([]byte, len(magic))
	n, err := r.ReadAt(head, 0)
	if n < len(head) || (err != nil && !errors.Is(err, io.EOF)) {
		return false
	}
	return IsWasm(head)
}

// Runtime compiles modules, sharing one compilation cache per image digest
// between every Module compiled from that image.
type Runtime struct {
	cacheDir string
	// compileMu serializes compiles, so that the code mapped during one
	// is its own (see compileShared).
	compileMu sync.Mutex

	mu     sync.Mutex
	caches map[string]wazero.CompilationCache // by digest
	closed bool
}

// Option configures a Runtime.
type Option func(*Runtime)

// WithCacheDir keeps compiled code under dir, one subdirectory per image
// digest. Without it, compiled code lives in memory only, for the Runtime's
// life.
func WithCacheDir(dir string) Option {
	return func(r *Runtime) { r.cacheDir = dir }
}

// New returns a Runtime. Close releases its caches' memory; the files on
// disk stay for the next Runtime.
func New(opts ...Option) *Runtime {
	r := &Runtime{caches: map[string]wazero.CompilationCache{}}
	for _, o := range opts {
		o(r)
	}
	return r
}

// CacheDir is the directory holding digest's compiled code, or "" without
// a cache directory.
func (r *Runtime) CacheDir(digest string) string {
	if r.cacheDir == "" {
		return ""
	}
	return filepath.Join(r.cacheDir, cacheName(digest))
}

// cacheName makes a digest ("sha256:abc...") a single path element.
func cacheName(digest string) string {
	return strings.NewReplacer(":", "-", "/", "_").Replace(digest)
}

// cache returns digest's compilation cache, creating it on first use.
func (r *Runtime) cache(digest string) (wazero.CompilationCache, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, errors.New("wasm runtime is closed")
	}
	if c, ok := r.caches[digest]; ok {
		return c, nil
	}
	var c wazero.CompilationCache
	if dir := r.CacheDir(digest); dir != "" {
		var err error
		if c, err = wazero.NewCompilationCacheWithDir(dir); err != nil {
			return nil, fmt.Errorf("compilation cache %s: %w", dir, err)
		}
	} else {
		c = wazero.NewCompilationCache()
	}
	r.caches[digest] = c
	return c, nil
}

// RemoveCache forgets digest's compiled code, in memory and on disk: for
// the image garbage collector, once the image is gone. Modules compiled
// from it keep working.
func (r *Runtime) RemoveCache(ctx context.Context, digest string) error {
	r.mu.Lock()
	c, ok := r.caches[digest]
	delete(r.caches, digest)
	r.mu.Unlock()
	if ok {
		if err := c.Close(ctx); err != nil {
			return fmt.Errorf("close compilation cache of %s: %w", digest, err)
		}
	}
	if dir := r.CacheDir(digest); dir != "" {
		if err := os.RemoveAll(dir); err != nil {
			return fmt.Errorf("remove compilation cache of %s: %w", digest, err)
		}
	}
	return nil
}

// Close releases the in-memory caches. Modules must be closed first.
func (r *Runtime) Close(ctx context.Context) error {
	r.mu.Lock()
	caches := r.caches
	r.caches, r.closed = nil, true
	r.mu.Unlock()
	var errs []error
	for _, c := range caches {
		errs = append(errs, c.Close(ctx))
	}
	return errors.Join(errs...)
}
