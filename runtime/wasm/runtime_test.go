package wasm

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestIsWasm(t *testing.T) {
	for _, c := range []struct {
		data []byte
		want bool
	}{
		{trapModule, true},
		{[]byte("\x00asm"), true},
		{[]byte("\x00as"), false},
		{[]byte("\x7fELF\x02\x01\x01"), false},
		{[]byte("#!/bin/sh\n"), false},
		{nil, false},
	} {
		if got := IsWasm(c.data); got != c.want {
			t.Errorf("IsWasm(%q) = %v, want %v", c.data, got, c.want)
		}
		if got := IsWasmAt(bytes.NewReader(c.data)); got != c.want {
			t.Errorf("IsWasmAt(%q) = %v, want %v", c.data, got, c.want)
		}
	}
}

func TestCompileRefusesNonWasm(t *testing.T) {
	rt := New()
	defer rt.Close(context.Background())
	if _, err := rt.Compile(context.Background(), "sha256:elf", []byte("\x7fELF\x02\x01\x01")); err == nil || !strings.Contains(err.Error(), "not a WebAssembly module") {
		t.Fatalf("err %v, want not a WebAssembly module", err)
	}
}

// cacheFile is one compiled module in a digest's cache directory, with
// what identifies that very file.
type cacheFile struct {
	path  string
	inode uint64
	mtime int64
}

func cacheFiles(t *testing.T, dir string) []cacheFile {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, "wazero-*", "*"))
	if err != nil {
		t.Fatal(err)
	}
	var files []cacheFile
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, cacheFile{p, fi.Sys().(*syscall.Stat_t).Ino, fi.ModTime().UnixNano()})
	}
	return files
}

// TestCompileCacheReuse compiles one module in two Runtimes on the same
// directory, as two agent lifetimes would: the second must load the first
// one's compiled code, which wazero would otherwise write anew (a new file
// renamed into place) after compiling.
func TestCompileCacheReuse(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	bin := buildGuest(t, "exit")
	const digest = "sha256:0123456789abcdef"

	rt1 := New(WithCacheDir(dir))
	m1, err := rt1.Compile(ctx, digest, bin)
	if err != nil {
		t.Fatal(err)
	}
	if m1.FromCache() {
		t.Error("the first compile into an empty directory claims a cache hit")
	}
	m1.Close(ctx)
	rt1.Close(ctx)
	digestDir := rt1.CacheDir(digest)
	if filepath.Dir(digestDir) != dir || filepath.Base(digestDir) != "sha256-0123456789abcdef" {
		t.Errorf("cache directory %s, want %s/sha256-0123456789abcdef", digestDir, dir)
	}
	first := cacheFiles(t, digestDir)
	if len(first) != 1 {
		t.Fatalf("cache files after the first compile: %v, want one", first)
	}

	rt2 := New(WithCacheDir(dir))
	defer rt2.Close(ctx)
	m2, err := rt2.Compile(ctx, digest, bin)
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close(ctx)
	if !m2.FromCache() {
		t.Error("the second compile did not report a cache hit")
	}
	second := cacheFiles(t, digestDir)
	if len(second) != 1 || second[0] != first[0] {
		t.Errorf("cache files after the second compile %v, want the first compile's %v untouched", second, first)
	}
	// The code loaded from the cache runs.
	res, out := run(t, m2, WithArgv("exit", "code", "7"))
	if res.Termination != Exited || res.ExitCode != 7 {
		t.Errorf("result %+v; stderr:\n%s", res, out.stderr.String())
	}

	// Another image has its own directory; removing one leaves the other.
	m3, err := rt2.Compile(ctx, "sha256:other", bin)
	if err != nil {
		t.Fatal(err)
	}
	m3.Close(ctx)
	if err := rt2.RemoveCache(ctx, digest); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(digestDir); !os.IsNotExist(err) {
		t.Errorf("cache directory of the removed digest: %v", err)
	}
	if len(cacheFiles(t, rt2.CacheDir("sha256:other"))) != 1 {
		t.Error("the other digest's cache is gone too")
	}
}
