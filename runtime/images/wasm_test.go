package images

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/containerd/containerd"
	"github.com/opencontainers/go-digest"

	"github.com/wasmkube/wasmkube/internal/testimages"
)

// echoPkg is a Go command built for wasip1 by the tests.
const echoPkg = "../wasm/testdata/echo"

func importArchive(t *testing.T, ctx context.Context, cl *containerd.Client, archive string) {
	t.Helper()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := Import(ctx, cl, f, nil); err != nil {
		t.Fatalf("import %s: %v", archive, err)
	}
}

func TestWasmModuleOfWasmAndOCIImages(t *testing.T) {
	cl := startContainerd(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	module, err := os.ReadFile(testimages.BuildWasmModule(t, echoPkg))
	if err != nil {
		t.Fatal(err)
	}
	importArchive(t, ctx, cl, testimages.BuildWasmOCIArchive(t, "example.test/echo:wasm", echoPkg))
	importArchive(t, ctx, cl, testimages.BuildBusyboxOCIArchive(t, "example.test/busybox:1"))

	// The wasip1/wasm image imports, unpacks and lists on this node like
	// any other.
	sums, err := Summaries(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	for _, sm := range sums {
		if !sm.Unpacked || sm.Size <= 0 {
			t.Errorf("summary %+v: want unpacked, with a size", sm)
		}
	}

	s := NewStore(cl)
	dir := filepath.Join(t.TempDir(), "modules")

	// The wasm image: its entrypoint is the module, args keep it.
	m, ok, err := s.WasmModule(ctx, "example.test/echo:wasm", nil, []string{"hi", "there"}, dir)
	if err != nil || !ok {
		t.Fatalf("WasmModule(echo) = %+v, %v, %v; want a module", m, ok, err)
	}
	sum := sha256.Sum256(module)
	if want := filepath.Join(dir, hex.EncodeToString(sum[:])+".wasm"); m.Path != want {
		t.Errorf("module path %s, want %s", m.Path, want)
	}
	got, err := os.ReadFile(m.Path)
	if err != nil || !bytes.Equal(got, module) {
		t.Fatalf("extracted module differs from the built one (%d vs %d bytes, %v)", len(got), len(module), err)
	}
	if !slices.Equal(m.Argv, []string{"/app.wasm", "hi", "there"}) {
		t.Errorf("argv %q", m.Argv)
	}
	img, err := Get(ctx, cl, "example.test/echo:wasm")
	if err != nil {
		t.Fatal(err)
	}
	if m.ImageDigest != img.Target().Digest.String() {
		t.Errorf("image digest %s, want %s", m.ImageDigest, img.Target().Digest)
	}

	// Asked again, the decision and the file are reused; a file removed
	// behind the store's back is written again.
	if err := os.Remove(m.Path); err != nil {
		t.Fatal(err)
	}
	if m2, ok, err := s.WasmModule(ctx, "example.test/echo:wasm", nil, nil, dir); err != nil || !ok || m2.Path != m.Path {
		t.Fatalf("second WasmModule = %+v, %v, %v", m2, ok, err)
	}
	if _, err := os.Stat(m.Path); err != nil {
		t.Fatalf("module not written again: %v", err)
	}

	// A command replacing the entrypoint with a file the image lacks.
	if _, ok, err := s.WasmModule(ctx, "example.test/echo:wasm", []string{"/nope.wasm"}, nil, dir); err != nil || ok {
		t.Errorf("missing command: ok=%v err=%v; want not a module", ok, err)
	}

	// busybox: sh, found through PATH and a symlink to an ELF binary.
	bm, ok, err := s.WasmModule(ctx, "example.test/busybox:1", nil, nil, dir)
	if err != nil || ok || bm.Path != "" {
		t.Fatalf("WasmModule(busybox) = %+v, %v, %v; want not a module", bm, ok, err)
	}
	if !slices.Equal(bm.Argv, []string{"sh"}) || !slices.Contains(bm.Env, "PATH="+testimages.BusyboxPath) {
		t.Errorf("busybox argv %q env %q", bm.Argv, bm.Env)
	}
	_, err = s.RequireWasmModule(ctx, "example.test/busybox:1", nil, nil, dir)
	if !errors.Is(err, ErrNotWasm) {
		t.Fatalf("RequireWasmModule(busybox) = %v; want ErrNotWasm", err)
	}
	t.Logf("busybox as wasm: %v", err)
	if want := "/bin/busybox"; !bytes.Contains([]byte(err.Error()), []byte(want)) {
		t.Errorf("error %q does not name %s, the file sh resolves to", err, want)
	}
	_, err = s.RequireWasmModule(ctx, "example.test/echo:wasm", []string{"nope"}, nil, dir)
	if !errors.Is(err, ErrNotWasm) || !bytes.Contains([]byte(err.Error()), []byte("no such file")) {
		t.Errorf("RequireWasmModule of a missing command = %v", err)
	}
	if _, _, err := s.WasmModule(ctx, "example.test/absent:1", nil, nil, dir); err == nil {
		t.Error("WasmModule of a missing image succeeded")
	}

	// Removing the image's modules removes the file and the reference.
	if err := s.RemoveWasmModules(dir, m.ImageDigest); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(m.Path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("module still there after its image's removal: %v", err)
	}
	if err := s.RemoveWasmModules(dir, bm.ImageDigest); err != nil {
		t.Errorf("removing the modules of an image without any: %v", err)
	}
}

func TestRemoveWasmModulesKeepsSharedFiles(t *testing.T) {
	s := NewStore(nil)
	dir := t.TempDir()
	const a, b = "sha256:" + "aa00000000000000000000000000000000000000000000000000000000000000",
		"sha256:" + "bb00000000000000000000000000000000000000000000000000000000000000"
	sum := sha256.Sum256([]byte("m"))
	shared := hex.EncodeToString(sum[:])
	if err := os.WriteFile(modulePath(dir, shared), []byte("m"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, img := range []string{a, b} {
		if err := s.addRef(dir, mustDigest(t, img), shared); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.RemoveWasmModules(dir, a); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(modulePath(dir, shared)); err != nil {
		t.Fatalf("module used by another image was removed: %v", err)
	}
	if err := s.RemoveWasmModules(dir, b); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(modulePath(dir, shared)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("module of no image left: %v", err)
	}
	if err := s.RemoveWasmModules(dir, "not a digest"); err == nil {
		t.Error("a malformed digest was accepted")
	}
}

func mustDigest(t *testing.T, s string) digest.Digest {
	t.Helper()
	d, err := digest.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}
