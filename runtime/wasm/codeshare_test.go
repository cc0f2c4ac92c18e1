package wasm

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

func TestNewRegions(t *testing.T) {
	for _, c := range []struct {
		name          string
		before, after []region
		want          []region
	}{
		{"nothing new", []region{{10, 20}}, []region{{10, 20}}, nil},
		{"a new region", []region{{10, 20}}, []region{{10, 20}, {40, 50}}, []region{{40, 50}}},
		{"merged below", []region{{10, 20}}, []region{{5, 20}}, []region{{5, 10}}},
		{"merged above", []region{{10, 20}}, []region{{10, 30}}, []region{{20, 30}}},
		{"merged between", []region{{10, 20}, {30, 40}}, []region{{10, 40}}, []region{{20, 30}}},
		{"merged around", []region{{10, 20}}, []region{{0, 30}}, []region{{0, 10}, {20, 30}}},
		{"one gone", []region{{10, 20}, {30, 40}}, []region{{30, 40}}, nil},
		{"none before", nil, []region{{1, 2}, {3, 4}}, []region{{1, 2}, {3, 4}}},
	} {
		if got := newRegions(c.before, c.after); !slices.Equal(got, c.want) {
			t.Errorf("%s: newRegions(%v, %v) = %v, want %v", c.name, c.before, c.after, got, c.want)
		}
	}
}

// codeRegion maps size bytes of anonymous memory, fills it with fill and
// makes it read-only and executable, as wazero does with compiled code.
// Each region has pages of its own, so the kernel never merges two of them
// into one mapping.
func codeRegion(t *testing.T, size int, fill byte) region {
	t.Helper()
	mem, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		t.Fatal(err)
	}
	for i := range mem {
		mem[i] = fill + byte(i%251)
	}
	if err := unix.Mprotect(mem, unix.PROT_READ|unix.PROT_EXEC); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Munmap(mem) })
	start := uintptr(unsafe.Pointer(&mem[0]))
	return region{start, start + uintptr(size)}
}

// mappedFile is the file /proc/self/maps shows mapped at addr, with the
// mapping's permissions.
func mappedFile(t *testing.T, addr uintptr) (perms, path string) {
	t.Helper()
	data, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 5 {
			continue
		}
		var lo, hi uintptr
		if _, err := fmt.Sscanf(fields[0], "%x-%x", &lo, &hi); err == nil && lo <= addr && addr < hi {
			if len(fields) > 5 {
				path = fields[5]
			}
			return fields[1], path
		}
	}
	t.Fatalf("%#x is not mapped", addr)
	return "", ""
}

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

// writeCacheFile writes a wazero cache file of code into cacheDir, as
// wazero lays it out: magic, version, function offsets, code length, code.
func writeCacheFile(t *testing.T, cacheDir string, code []byte) {
	t.Helper()
	var b bytes.Buffer
	b.WriteString("WAZEVO")
	b.WriteByte(byte(len("v1.0.0")))
	b.WriteString("v1.0.0")
	_ = binary.Write(&b, binary.LittleEndian, uint32(2))
	_ = binary.Write(&b, binary.LittleEndian, []uint64{0, 64})
	_ = binary.Write(&b, binary.LittleEndian, uint64(len(code)))
	b.Write(code)
	b.Write([]byte{1, 2, 3, 4, 0, 0, 0, 0})
	dir := filepath.Join(cacheDir, "wazero-v1.0.0-amd64-linux")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "0123abcd"), b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestShareCodeMapsOneFile(t *testing.T) {
	cacheDir := t.TempDir()
	dir := filepath.Join(cacheDir, sharedDirName)
	const size = minSharedRegion + 3*4096
	before, err := anonExecRegions()
	if err != nil {
		t.Fatal(err)
	}
	a := codeRegion(t, size, 7)
	want := bytes.Clone(a.bytes())
	// The code ends inside its last page, as a module's does.
	writeCacheFile(t, cacheDir, want[:size-100])
	n, err := shareCode(cacheDir, before)
	if err != nil || n != size {
		t.Fatalf("shareCode = %d, %v; want %d bytes shared", n, err, size)
	}
	perms, path := mappedFile(t, a.start)
	if perms != "r-xp" || filepath.Dir(path) != dir {
		t.Fatalf("region mapped %s from %q, want r-xp from a file of %s", perms, path, dir)
	}
	if !bytes.Equal(a.bytes(), want) {
		t.Fatal("the region's bytes changed")
	}

	// Another copy of the code (another process's, in effect) maps the
	// same file; other code stays anonymous.
	before, _ = anonExecRegions()
	b := codeRegion(t, size, 7)
	other := codeRegion(t, size, 1)
	if n, err := shareCode(cacheDir, before); err != nil || n != size {
		t.Fatalf("second shareCode = %d, %v; want %d", n, err, size)
	}
	if _, pathB := mappedFile(t, b.start); pathB != path || inode(t, pathB) != inode(t, path) {
		t.Errorf("second region mapped from %q, want %q", pathB, path)
	}
	if _, p := mappedFile(t, other.start); p != "" {
		t.Errorf("other code mapped from %q, want anonymous", p)
	}
	if files, _ := os.ReadDir(dir); len(files) != 1 {
		t.Errorf("code directory holds %d files, want 1", len(files))
	}
}

func TestLocateInMergedRegion(t *testing.T) {
	page := uintptr(os.Getpagesize())
	r := codeRegion(t, int(10*page), 5)
	code := region{r.start + 2*page, r.start + 9*page}
	c := cachedCode{size: int(7*page) - 10, head: bytes.Clone(code.bytes()[:page])}
	if got, ok := locate(r, c); !ok || got != code {
		t.Errorf("locate = %v, %v; want %v", got, ok, code)
	}
	c.head[0]++
	if got, ok := locate(r, c); ok {
		t.Errorf("locate of other code = %v, want none", got)
	}
}

func TestShareCodeKeepsPrivateCopyOnMismatch(t *testing.T) {
	cacheDir := t.TempDir()
	dir := filepath.Join(cacheDir, sharedDirName)
	before, err := anonExecRegions()
	if err != nil {
		t.Fatal(err)
	}
	r := codeRegion(t, minSharedRegion, 3)
	want := bytes.Clone(r.bytes())
	writeCacheFile(t, cacheDir, want)
	// A file of the code's name with other bytes: a checksum collision,
	// or a corrupt file.
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	other := bytes.Repeat([]byte{0xcc}, len(want))
	if err := os.WriteFile(filepath.Join(dir, sharedFileName(want, ".code")), other, 0o444); err != nil {
		t.Fatal(err)
	}
	n, err := shareCode(cacheDir, before)
	if err == nil || !strings.Contains(err.Error(), "differs") || n != 0 {
		t.Fatalf("shareCode = %d, %v; want an error saying the file differs", n, err)
	}
	if perms, path := mappedFile(t, r.start); perms != "r-xp" || path != "" {
		t.Errorf("region is %s %q, want anonymous r-xp", perms, path)
	}
	if !bytes.Equal(r.bytes(), want) {
		t.Error("the region's bytes changed")
	}
}

// TestCompileSharesCode compiles a real guest from the cache: its code is
// mapped from the digest's code directory, and the guest still runs.
func TestCompileSharesCode(t *testing.T) {
	compileGuest(t, "echo") // fills the cache
	m := compileGuest(t, "echo")
	n, err := m.SharedCode()
	if err != nil || n < minSharedRegion {
		t.Fatalf("SharedCode = %d, %v; want the module's code shared", n, err)
	}
	dir := filepath.Join(shared.dir, "cache", cacheName(m.Digest()), sharedDirName)
	data, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Fatal(err)
	}
	var mapped int64
	for _, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 6 && fields[1] == "r-xp" && filepath.Dir(fields[5]) == dir {
			var lo, hi int64
			if _, err := fmt.Sscanf(fields[0], "%x-%x", &lo, &hi); err != nil {
				t.Fatal(err)
			}
			mapped += hi - lo
		}
	}
	if mapped < n {
		t.Fatalf("%d bytes mapped r-xp from %s, want at least %d:\n%s", mapped, dir, n, data)
	}
	res, out := run(t, m, WithArgv("echo", "shared"))
	if res.ExitCode != 0 || !strings.Contains(out.stdout.String(), "arg[1]=shared\n") {
		t.Fatalf("result %+v, stdout %q, stderr %q", res, out.stdout.String(), out.stderr.String())
	}
}
