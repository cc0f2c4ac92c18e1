package wasm

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/tetratelabs/wazero"
	"golang.org/x/sys/unix"

	"github.com/wasmkube/wasmkube/runtime/wasm/wasisock"
)

// pageSize is the size of a WebAssembly linear memory page.
const pageSize = 65536

// ErrMemoryLimit is returned (wrapped) by Compile when the module's
// declared memory does not fit its memory limit: the container could never
// start, which the caller reports as OOMKilled.
var ErrMemoryLimit = errors.New("module memory exceeds the memory limit")

// Module is a compiled module with the limits of the container it runs
// as. Each Run is a new, independent instance of it.
type Module struct {
	digest      string
	memoryLimit int64 // bytes; 0 is no limit beyond wasm's 4 GiB
	fromCache   bool
	sharedCode  int64 // bytes of code mapped from shared files
	savingErr   error // why a memory saving did not apply
	// dataView maps the merged data segments of the image, shared by
	// every sandbox; read only when an instance starts.
	dataView []byte
	// image is placed in every instance's memory in place of the data
	// segments, if the module's data allowed it (see memoryImage).
	image    *memoryImage
	rt       wazero.Runtime
	compiled wazero.CompiledModule
}

// CompileOption configures a Module.
type CompileOption func(*compileOptions)

type compileOptions struct{ memoryLimit int64 }

// WithMemoryLimit caps the module's linear memory at limit bytes (a
// container's resources.limits.memory), rounded down to whole 64 KiB pages.
// A guest asking for more is refused the memory; if it then fails, the Run
// ends OOMKilled.
func WithMemoryLimit(limit int64) CompileOption {
	return func(o *compileOptions) { o.memoryLimit = limit }
}

// Compile compiles the module bin of the image digest, or loads the code
// compiled earlier for that digest from the cache. Close the Module when
// the container is gone.
func (r *Runtime) Compile(ctx context.Context, digest string, bin []byte, opts ...CompileOption) (*Module, error) {
	if !IsWasm(bin) {
		return nil, fmt.Errorf("image %s: not a WebAssembly module (no \\0asm magic)", digest)
	}
	var o compileOptions
	for _, opt := range opts {
		opt(&o)
	}
	cache, err := r.cache(digest)
	if err != nil {
		return nil, err
	}
	// The limit is enforced by each instance's memory allocator, not by
	// wazero's WithMemoryLimitPages: wazero refuses a grow over its limit
	// before any hook sees it, and the guest's failure could not be told
	// from any other. wazero's own limit stays at the 4 GiB a wasm32 memory
	// can address.
	cfg := wazero.NewRuntimeConfig().
		WithCompilationCache(cache).
		// Cancelling a Run's context stops its guest, even in a loop.
		WithCloseOnContextDone(true)
	before := cacheEntries(r.CacheDir(digest))
	m := &Module{digest: digest, rt: wazero.NewRuntimeWithConfig(ctx, cfg)}
	// wasisock's WASI is wazero's for every guest without a socket table
	// (WithSockets), so every module gets it.
	if _, err := wasisock.Instantiate(ctx, m.rt); err != nil {
		m.rt.Close(ctx)
		return nil, fmt.Errorf("instantiate WASI preview1: %w", err)
	}
	m.compiled, err = r.compileShared(ctx, m, digest, bin)
	if err != nil {
		m.rt.Close(ctx)
		return nil, fmt.Errorf("compile module of image %s: %w", digest, err)
	}
	// The bodies' memory goes at the caller's next collection.
	if _, err := dropCodeBodies(m.compiled); err != nil {
		m.savingErr = errors.Join(m.savingErr, fmt.Errorf("free function bodies: %w", err))
	}
	dataDir := ""
	if dir := r.CacheDir(digest); dir != "" {
		dataDir = filepath.Join(dir, sharedDirName)
	}
	image, err := newMemoryImage(m.compiled, dataDir)
	if err != nil {
		m.savingErr = errors.Join(m.savingErr, fmt.Errorf("map data into memory: %w", err))
	}
	if image != nil {
		m.image = image
		// Released once the Module is unreachable, as dataView below.
		runtime.AddCleanup(m, func(im *memoryImage) { im.close() }, image)
	}
	var view []byte
	if image == nil {
		view, _, _, err = mergeDataSegments(m.compiled, dataDir)
	}
	if err != nil {
		m.savingErr = errors.Join(m.savingErr, fmt.Errorf("merge data segments: %w", err))
	}
	if view != nil {
		m.dataView = view
		// Unmapped once the Module is unreachable, not by Close: a Run
		// still starting (an exec racing a removal) holds the Module and
		// may be copying the data.
		runtime.AddCleanup(m, func(v []byte) { _ = unix.Munmap(v) }, view)
	}
	after := cacheEntries(r.CacheDir(digest))
	m.fromCache = before > 0 && after == before
	if err := m.LimitMemory(o.memoryLimit); err != nil {
		m.Close(ctx)
		return nil, err
	}
	return m, nil
}

// LimitMemory sets the module's memory limit, as WithMemoryLimit does at
// Compile, for a module compiled before its container's limit was known
// (a sandbox started ahead of its pod). Call it before the first Run. A
// module whose memory's declared minimum exceeds limit is refused with
// ErrMemoryLimit; it keeps its earlier limit.
func (m *Module) LimitMemory(limit int64) error {
	if limit == 0 {
		m.memoryLimit = 0
		return nil
	}
	if limit < pageSize {
		return fmt.Errorf("memory limit %d is less than one 64 KiB page: %w", limit, ErrMemoryLimit)
	}
	pages := min(limit/pageSize, 65536)
	// WASI commands export their memory (the host functions use it).
	mems := m.compiled.ExportedMemories()
	for _, mem := range m.compiled.ImportedMemories() {
		mod, name, _ := mem.Import()
		mems[mod+"."+name] = mem
	}
	for name, mem := range mems {
		if int64(mem.Min()) > pages {
			return fmt.Errorf("memory %q needs %d bytes, limit %d: %w",
				name, int64(mem.Min())*pageSize, pages*pageSize, ErrMemoryLimit)
		}
	}
	m.memoryLimit = pages * pageSize
	return nil
}

// compileShared compiles bin in m's runtime, then maps the code wazero
// loaded or compiled from a file of the digest's cache directory, shared
// by every process running the image (see shareCode). Compiles of the
// Runtime are serialized, so that the code regions that appear during one
// are its own.
func (r *Runtime) compileShared(ctx context.Context, m *Module, digest string, bin []byte) (wazero.CompiledModule, error) {
	dir := r.CacheDir(digest)
	if dir == "" {
		return m.rt.CompileModule(ctx, bin)
	}
	r.compileMu.Lock()
	defer r.compileMu.Unlock()
	before, err := anonExecRegions()
	compiled, cerr := m.rt.CompileModule(ctx, bin)
	if cerr != nil {
		return nil, cerr
	}
	if err == nil {
		m.sharedCode, err = shareCode(dir, before)
	}
	if err != nil {
		m.savingErr = fmt.Errorf("share compiled code: %w", err)
	}
	return compiled, nil
}

// cacheEntries counts the compiled modules in a digest's cache directory
// (wazero keeps them in a subdirectory per wazero version and platform).
func cacheEntries(dir string) int {
	if dir == "" {
		return 0
	}
	files, _ := filepath.Glob(filepath.Join(dir, "wazero-*", "*"))
	n := 0
	for _, f := range files {
		if fi, err := os.Stat(f); err == nil && fi.Mode().IsRegular() && filepath.Ext(f) != ".tmp" {
			n++
		}
	}
	return n
}

// FromCache reports whether Compile found the module's code already
// compiled, in the Runtime's memory or in its cache directory, and
// compiled nothing. Without a cache directory it is always false.
func (m *Module) FromCache() bool { return m.fromCache }

// SharedCode reports how many bytes of the module's compiled code are
// mapped from a file of the cache directory, shared with every other
// process running the image, and why a saving of memory did not apply, if
// one did not: code kept private, function bodies kept, data segments not
// merged. The module works the same either way.
func (m *Module) SharedCode() (int64, error) { return m.sharedCode, m.savingErr }

// Digest is the image digest the module was compiled for.
func (m *Module) Digest() string { return m.digest }

// MemoryLimit is the effective limit in bytes (whole pages), 0 for none.
func (m *Module) MemoryLimit() int64 { return m.memoryLimit }

// Close releases the compiled code and stops any Run still going.
func (m *Module) Close(ctx context.Context) error {
	if err := m.rt.Close(ctx); err != nil {
		return fmt.Errorf("close module of image %s: %w", m.digest, err)
	}
	return nil
}
