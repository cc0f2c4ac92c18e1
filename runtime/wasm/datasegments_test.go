package wasm

import (
	"bytes"
	"context"
	"math"
	"slices"
	"testing"

	"github.com/tetratelabs/wazero"
	"golang.org/x/sys/unix"
)

func TestI32Const(t *testing.T) {
	for _, n := range []uint32{0, 1, 63, 64, 127, 128, 8191, 8192, 709632, math.MaxInt32} {
		got, ok := parseI32Const(i32Const(n))
		if !ok || got != n {
			t.Errorf("parseI32Const(i32Const(%d)) = %d, %v", n, got, ok)
		}
	}
	for _, expr := range [][]byte{
		{opI32Const, 0x7f, opEnd},                               // -1
		{0x42, 0x00, opEnd},                                     // i64.const
		{opI32Const, 0x80, opEnd},                               // unterminated number
		{opI32Const, 0x00, 0x00, opEnd},                         // trailing bytes
		{opI32Const, 0x00},                                      // no end
		{opI32Const, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01, opEnd}, // too long
	} {
		if n, ok := parseI32Const(expr); ok {
			t.Errorf("parseI32Const(%x) = %d, want refused", expr, n)
		}
	}
}

func TestMergeSegments(t *testing.T) {
	segs := []segment{
		{0, []byte{1, 2}},
		{2, []byte{3}},                // adjacent
		{3 + maxDataGap, []byte{4}},   // gap of maxDataGap
		{5 + 2*maxDataGap, []byte{5}}, // gap of maxDataGap+1
	}
	got, _ := mergeSegments(segs)
	want := []segment{
		{0, append([]byte{1, 2, 3}, append(make([]byte, maxDataGap), 4)...)},
		{5 + 2*maxDataGap, []byte{5}},
	}
	if !slices.EqualFunc(got, want, func(a, b segment) bool { return a.offset == b.offset && bytes.Equal(a.data, b.data) }) {
		t.Errorf("mergeSegments = %v, want %v", got, want)
	}
}

// TestMergeDataSegmentsSameMemory instantiates a Go guest with its data
// segments merged and as wazero decoded them: the memories start the
// same, from far fewer segments.
func TestMergeDataSegmentsSameMemory(t *testing.T) {
	bin := buildGuest(t, "echo")
	ctx := context.Background()
	dir := t.TempDir()
	memory := func(merge bool) []byte {
		rt, compiled := compileBare(t, bin)
		if merge {
			view, before, after, err := mergeDataSegments(compiled, dir)
			if view == nil {
				t.Fatal("merged data not mapped from a file")
			}
			defer unix.Munmap(view)
			if err != nil || after*10 > before {
				t.Fatalf("mergeDataSegments: %d segments to %d, %v; want a tenth or fewer", before, after, err)
			}
		}
		mod, err := rt.InstantiateModule(ctx, compiled, wazero.NewModuleConfig().WithStartFunctions())
		if err != nil {
			t.Fatal(err)
		}
		mem, ok := mod.Memory().Read(0, mod.Memory().Size())
		if !ok {
			t.Fatal("memory unreadable")
		}
		return bytes.Clone(mem)
	}
	plain, merged := memory(false), memory(true)
	if len(plain) != len(merged) {
		t.Fatalf("memory sizes %d and %d", len(plain), len(merged))
	}
	if !bytes.Equal(plain, merged) {
		t.Fatal("merged data segments make another memory")
	}
	if bytes.Count(plain, []byte{0}) == len(plain) {
		t.Fatal("the guest's memory holds no data")
	}
}

// TestSavingsOfModuleWithoutData compiles a module without data segments
// or a body worth sharing: no saving applies, and none is an error.
func TestSavingsOfModuleWithoutData(t *testing.T) {
	rt := New(WithCacheDir(t.TempDir()))
	defer rt.Close(context.Background())
	m, err := rt.Compile(context.Background(), "sha256:trap", trapModule)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(context.Background())
	if n, err := m.SharedCode(); n != 0 || err != nil {
		t.Errorf("SharedCode = %d, %v; want 0, nil", n, err)
	}
}
