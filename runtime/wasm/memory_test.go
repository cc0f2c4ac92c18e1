package wasm

import (
	"testing"
	"unsafe"
)

// TestLinearMemoryGrowsInPlace checks the reserved memory: a grow keeps
// the address and the bytes, gives zeroes, and a grow over the limit is
// refused and seen.
func TestLinearMemoryGrowsInPlace(t *testing.T) {
	l := &linearMemory{limit: 8 * pageSize}
	l.Allocate(pageSize, 1<<32)
	defer l.release()
	if l.reserved == nil || len(l.reserved) != 8*pageSize {
		t.Fatalf("reserved %d bytes, want the limit, %d", len(l.reserved), 8*pageSize)
	}
	buf := l.Reallocate(pageSize)
	if len(buf) != pageSize {
		t.Fatalf("minimum: %d bytes", len(buf))
	}
	buf[0], buf[pageSize-1] = 1, 2
	grown := l.Reallocate(5 * pageSize)
	if len(grown) != 5*pageSize || unsafe.SliceData(grown) != unsafe.SliceData(buf) {
		t.Fatalf("grow to 5 pages: %d bytes at %p, want in place at %p", len(grown), unsafe.SliceData(grown), unsafe.SliceData(buf))
	}
	if grown[0] != 1 || grown[pageSize-1] != 2 || grown[pageSize] != 0 || grown[5*pageSize-1] != 0 {
		t.Fatal("grow lost bytes or gave non-zero ones")
	}
	grown[5*pageSize-1] = 3 // writable
	if l.Reallocate(9*pageSize) != nil || !l.refused.Load() {
		t.Fatal("a grow over the limit was not refused")
	}
	if got := l.Reallocate(8 * pageSize); len(got) != 8*pageSize {
		t.Fatalf("grow to the limit: %d bytes", len(got))
	}
}
