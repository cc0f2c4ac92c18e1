package wasm

import (
	"sync/atomic"

	"github.com/tetratelabs/wazero/experimental"
)

// limitedMemory backs one instance's linear memory and enforces its limit
// itself, so that a refused grow is seen: wazero only returns -1 to the
// guest, and the guest then fails in its own way (Go exits 2, Rust traps).
type limitedMemory struct {
	limit   uint64 // bytes
	buf     []byte
	sized   bool // the minimum was allocated
	refused atomic.Bool
}

// Allocate implements experimental.MemoryAllocator; an instance has one
// memory.
func (l *limitedMemory) Allocate(capacity, _ uint64) experimental.LinearMemory {
	l.buf = make([]byte, 0, min(capacity, l.limit))
	return l
}

// Reallocate implements experimental.LinearMemory. The first call is for
// the memory's minimum, checked against the limit at compile time for
// exported memories; wazero cannot take a refusal of it.
func (l *limitedMemory) Reallocate(size uint64) []byte {
	if size > l.limit && l.sized {
		l.refused.Store(true)
		return nil
	}
	l.sized = true
	if size <= uint64(cap(l.buf)) {
		l.buf = l.buf[:size]
	} else {
		l.buf = append(l.buf, make([]byte, size-uint64(len(l.buf)))...)
	}
	return l.buf
}

// Free implements experimental.LinearMemory.
func (l *limitedMemory) Free() { l.buf = nil }
