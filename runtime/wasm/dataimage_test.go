package wasm

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/experimental"
)

// TestMemoryImageSameMemory instantiates a Go guest with its data as a
// memory image and as wazero decoded them: the memories start the same,
// the image's file is mapped into the instance's memory, and a write of
// the guest stays in its memory, not in the file.
func TestMemoryImageSameMemory(t *testing.T) {
	bin := buildGuest(t, "echo")
	ctx := context.Background()
	dir := t.TempDir()
	var im *memoryImage
	memory := func(useImage bool) []byte {
		rt, compiled := compileBare(t, bin)
		mem := &linearMemory{}
		if useImage {
			var err error
			im, err = newMemoryImage(compiled, dir)
			if err != nil || im == nil {
				t.Fatalf("newMemoryImage = %v, %v; want an image", im, err)
			}
			if im.base%uint32(os.Getpagesize()) != 0 || len(im.view)%os.Getpagesize() != 0 {
				t.Fatalf("image at %d of %d bytes is not whole host pages", im.base, len(im.view))
			}
			mem.image = im
		}
		defer mem.release()
		mod, err := rt.InstantiateModule(experimental.WithMemoryAllocator(ctx, mem), compiled, wazero.NewModuleConfig().WithStartFunctions())
		if err != nil {
			t.Fatal(err)
		}
		defer mod.Close(ctx)
		if useImage {
			maps, err := os.ReadFile("/proc/self/maps")
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(maps), ".mem") {
				t.Fatal("the image's file is not mapped into the memory")
			}
		}
		m, ok := mod.Memory().Read(0, mod.Memory().Size())
		if !ok {
			t.Fatal("memory unreadable")
		}
		out := bytes.Clone(m)
		if useImage {
			// Copy on write: the guest's write is its own.
			i := int(mem.image.base) + len(mem.image.view)/2
			m[i]++
			if mem.image.view[len(mem.image.view)/2] != out[i] {
				t.Fatal("a write to the memory reached the image's file")
			}
		}
		return out
	}
	plain := memory(false)
	if bytes.Count(plain, []byte{0}) == len(plain) {
		t.Fatal("the guest's memory holds no data")
	}
	got := memory(true)
	defer im.close()
	if !bytes.Equal(plain, got) {
		t.Fatal("the memory image makes another memory")
	}
	// A memory that is a Go slice gets a copy.
	copied := make([]byte, len(plain))
	if !im.place(copied, false) || !bytes.Equal(plain, copied) {
		t.Fatal("the memory image copied makes another memory")
	}
	if im.place(copied[:int(im.base)+len(im.view)-1], false) {
		t.Fatal("the image was placed in a memory too small for it")
	}
}
