package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wasmkube/wasmkube/internal/testimages"
	"github.com/wasmkube/wasmkube/runtime/containerd/containerdtest"
	"github.com/wasmkube/wasmkube/runtime/images"
)

func runImage(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := newImageCommand()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), err
}

func TestImagePackWasmImportsAndRuns(t *testing.T) {
	module := testimages.BuildWasmModule(t, "../../runtime/wasm/testdata/echo")
	archive := filepath.Join(t.TempDir(), "echo.tar")
	out, err := runImage(t, "pack", "--wasm", module, "-t", "echo:v1", "-o", archive)
	if err != nil {
		t.Fatalf("pack: %v\n%s", err, out)
	}
	if !strings.Contains(out, "docker.io/library/echo:v1") {
		t.Errorf("pack output %q does not name the full reference", out)
	}

	cl := containerdtest.Start(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var progress bytes.Buffer
	if err := importFile(ctx, cl, archive, nil, &progress, &progress); err != nil {
		t.Fatalf("import: %v\n%s", err, progress.String())
	}
	m, ok, err := images.NewStore(cl).WasmModule(ctx, "echo:v1", nil, nil, t.TempDir())
	if err != nil || !ok {
		t.Fatalf("WasmModule of the packed image = %+v, %v, %v", m, ok, err)
	}
	want, err := os.ReadFile(module)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(m.Path)
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("module from the image differs from the packed one (%v)", err)
	}
}

func TestImagePackRefusesNonWasm(t *testing.T) {
	dir := t.TempDir()
	elf := filepath.Join(dir, "hello")
	if err := os.WriteFile(elf, []byte("\x7fELF\x02\x01\x01"), 0o755); err != nil {
		t.Fatal(err)
	}
	component := filepath.Join(dir, "component.wasm")
	if err := os.WriteFile(component, []byte("\x00asm\x0d\x00\x01\x00"), 0o644); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty.wasm")
	if err := os.WriteFile(empty, []byte("\x00asm\x01\x00\x00\x00"), 0o644); err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(dir, "out.tar")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"pack", "--wasm", elf, "-t", "x:1", "-o", archive}, "not a WebAssembly module"},
		{[]string{"pack", "--wasm", component, "-t", "x:1", "-o", archive}, "components are not supported"},
		{[]string{"pack", "--wasm", filepath.Join(dir, "missing.wasm"), "-t", "x:1", "-o", archive}, "no such file"},
		{[]string{"pack", "--wasm", elf, "-o", archive}, "give --wasm, -t and -o"},
		{[]string{"pack", "--wasm", empty, "-t", "Bad Ref", "-o", archive}, "image reference"},
		{[]string{"pack", "--wasm", empty, "-t", "x@sha256:" + strings.Repeat("a", 64), "-o", archive}, "give a tag"},
	} {
		_, err := runImage(t, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: err = %v; want one containing %q", c.args, err, c.want)
		}
	}
	if _, err := os.Stat(archive); !os.IsNotExist(err) {
		t.Errorf("a refused pack left %s (%v)", archive, err)
	}
}
