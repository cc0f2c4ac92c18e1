package wasm

import (
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/tetratelabs/wazero/experimental"
)

// linearMemory backs one instance's linear memory.
//
// It reserves the memory's whole possible size as address space
// (PROT_NONE, charged to nothing) and makes it readable and writable as the
// guest grows it, in place. wazero's own memory is a Go slice grown by
// append: every grow copies the memory and zeroes the new part, so all of
// it is resident, untouched pages included, and the old copy stays on the
// heap until a collection. Here a page is resident once the guest touches
// it, and a grow copies nothing. If the reservation fails, the memory is a
// Go slice as wazero's.
//
// It also enforces the container's limit itself, so that a refused grow is
// seen: wazero only returns -1 to the guest, and the guest then fails in
// its own way (Go exits 2, Rust traps).
type linearMemory struct {
	limit   uint64 // bytes; 0 is none
	refused atomic.Bool
	// image, if any, is placed in the memory before the guest runs.
	image *memoryImage

	mu       sync.Mutex
	reserved []byte // the mapping, nil for a Go slice
	buf      []byte
	sized    bool // the minimum was allocated
}

// Allocate implements experimental.MemoryAllocator; an instance has one
// memory.
func (l *linearMemory) Allocate(capacity, maxSize uint64) experimental.LinearMemory {
	l.mu.Lock()
	defer l.mu.Unlock()
	// capacity is the memory's minimum, which is given even over the
	// limit (see Reallocate).
	reserve := maxSize
	if l.limit != 0 {
		reserve = max(min(maxSize, l.limit), capacity)
	}
	if reserve > 0 {
		mem, err := unix.Mmap(-1, 0, int(reserve), unix.PROT_NONE, unix.MAP_PRIVATE|unix.MAP_ANON|unix.MAP_NORESERVE)
		if err == nil {
			l.reserved, l.buf = mem, mem[:0]
			return l
		}
	}
	l.buf = make([]byte, 0, capacity)
	return l
}

// Reallocate implements experimental.LinearMemory. The first call is for
// the memory's minimum, checked against the limit at compile time for
// exported memories; wazero cannot take a refusal of it.
func (l *linearMemory) Reallocate(size uint64) []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.limit != 0 && size > l.limit && l.sized {
		l.refused.Store(true)
		return nil
	}
	first := !l.sized
	l.sized = true
	buf := l.grow(size)
	// The initial data go in once, before the guest runs.
	if first && buf != nil && l.image != nil && !l.image.place(buf, l.reserved != nil) {
		return nil
	}
	return buf
}

// grow gives the memory size bytes.
func (l *linearMemory) grow(size uint64) []byte {
	switch {
	case size <= uint64(len(l.buf)):
		l.buf = l.buf[:size]
	case l.reserved != nil:
		if size > uint64(len(l.reserved)) {
			return nil
		}
		// mprotect wants a page-aligned start; wasm pages are whole
		// host pages.
		if err := unix.Mprotect(l.reserved[len(l.buf):size], unix.PROT_READ|unix.PROT_WRITE); err != nil {
			return nil
		}
		l.buf = l.reserved[:size]
	case size <= uint64(cap(l.buf)):
		l.buf = l.buf[:size]
	default:
		l.buf = append(l.buf, make([]byte, size-uint64(len(l.buf)))...)
	}
	return l.buf
}

// Free implements experimental.LinearMemory. It does not unmap: wazero may
// close a module from another goroutine than the guest's, and the guest
// must not fault on memory gone under it. The Run that made the memory
// releases it once its instance is closed.
func (l *linearMemory) Free() {}

// release unmaps the memory; its instance must be closed.
func (l *linearMemory) release() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.reserved != nil {
		_ = unix.Munmap(l.reserved)
	}
	l.reserved, l.buf = nil, nil
}
