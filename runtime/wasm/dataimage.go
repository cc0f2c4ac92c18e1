package wasm

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"unsafe"

	"github.com/tetratelabs/wazero"
	"golang.org/x/sys/unix"
)

// maxImageSlack bounds the zeroes a memory image may hold besides its data
// (between segments, the rounding to host pages): as many bytes as the
// data, and 1 MiB. A Go guest's data are 2.4 MB spread over 4.1 MB. A
// module whose data are spread wider keeps its segments.
const maxImageSlack = 1 << 20

// memoryImage is the part of a module's initial memory that its data
// segments write, from the host page the first starts in to the end of the
// page the last ends in, as a file of the cache directory shared by every
// process running the image.
//
// wazero copies the data segments into every instance's memory, which
// makes all of their pages private to the process: 2.4 MB for a Go
// net/http server, although most of it is read-only data the guest never
// writes. Instead each instance's memory maps the image's file privately
// over the pages the data cover, before the guest runs: a page stays the
// page cache's one copy shared by every sandbox of the image until the
// guest writes it, and becomes the process's own only then (copy on
// write). wazero's data section is emptied, so it writes nothing over the
// mapping; every instance's memory gets the image from its allocator,
// copied when the memory cannot take a mapping.
type memoryImage struct {
	base uint32   // offset in the memory of the image's first byte
	file *os.File // the image's file, mapped by every instance
	view []byte   // a read-only mapping of file, for copies
}

// newMemoryImage turns the decoded module's data segments into a memory
// image shared through a file of dir, and empties the module's data
// section. It returns nil and no error for a module it does not apply to:
// one with an imported or shared memory, passive segments or a data count
// section (memory.init and data.drop address segments by index),
// offsets other than an i32.const, overlapping segments, data past the
// memory's minimum size or spread too wide. On any error nothing of the
// module is changed.
func newMemoryImage(compiled wazero.CompiledModule, dir string) (*memoryImage, error) {
	if dir == "" || len(compiled.ImportedMemories()) > 0 {
		return nil, nil
	}
	mod, err := decodedModule(compiled)
	if err != nil {
		return nil, err
	}
	section := mod.FieldByName("DataSection")
	dataCount := mod.FieldByName("DataCountSection")
	memory := mod.FieldByName("MemorySection")
	if section.Kind() != reflect.Slice || section.Type().Elem().Kind() != reflect.Struct || dataCount.Kind() != reflect.Pointer || memory.Kind() != reflect.Pointer {
		return nil, errors.New("decoded module has no data or memory section")
	}
	if !dataCount.IsNil() || memory.IsNil() || section.Len() == 0 {
		return nil, nil
	}
	minPages, shared := memory.Elem().FieldByName("Min"), memory.Elem().FieldByName("IsShared")
	if minPages.Kind() != reflect.Uint32 || shared.Kind() != reflect.Bool {
		return nil, errors.New("memory section is not as expected")
	}
	if shared.Bool() {
		return nil, nil
	}
	segs, err := readSegments(section)
	if errors.Is(err, errNotMergeable) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	page := uint64(os.Getpagesize())
	last := segs[len(segs)-1]
	first, end := uint64(segs[0].offset), uint64(last.offset)+uint64(len(last.data))
	base := first / page * page
	end = (end + page - 1) / page * page
	total := uint64(0)
	for _, s := range segs {
		total += uint64(len(s.data))
	}
	// A host page larger than a wasm page could not be mapped in place.
	if page > pageSize || end > minPages.Uint()*pageSize || end-base > 2*total+maxImageSlack {
		return nil, nil
	}
	image := make([]byte, end-base)
	for _, s := range segs {
		copy(image[uint64(s.offset)-base:], s.data)
	}
	f, view, err := sharedView(dir, image, ".mem")
	if err != nil {
		return nil, fmt.Errorf("share memory image: %w", err)
	}
	settable(section).Set(reflect.MakeSlice(section.Type(), 0, 0))
	return &memoryImage{base: uint32(base), file: f, view: view}, nil
}

// place writes the image into mem, a new instance's zeroed memory of at
// least the module's minimum size. mapped says mem is a mapping of its own
// at a host page boundary, which the image's file can be mapped over.
func (im *memoryImage) place(mem []byte, mapped bool) bool {
	if uint64(len(mem)) < uint64(im.base)+uint64(len(im.view)) {
		return false
	}
	dst := mem[im.base : int(im.base)+len(im.view)]
	if mapped {
		// MAP_FIXED replaces the zero pages the memory has there; the
		// guest has not run yet.
		_, err := unix.MmapPtr(int(im.file.Fd()), 0, unsafe.Pointer(unsafe.SliceData(dst)), uintptr(len(dst)),
			unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_FIXED)
		if err == nil {
			return true
		}
	}
	copy(dst, im.view)
	return true
}

// close releases the file and its view; no instance may start after.
func (im *memoryImage) close() {
	_ = unix.Munmap(im.view)
	_ = im.file.Close()
}
