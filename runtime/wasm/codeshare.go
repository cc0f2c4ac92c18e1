package wasm

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// minSharedRegion is the smallest compiled code worth a file of its own,
// and so the smallest executable region that can hold such code: wazero's
// per-runtime trampolines are a few pages, a module's code is megabytes.
const minSharedRegion = 256 << 10

// sharedDirName is the subdirectory of a digest's cache directory holding
// the files of compiled code and data that every process running the image
// maps (wazero's own entries are in "wazero-*" subdirectories).
const sharedDirName = "shared"

// region is a range of the process's address space, [start, end).
type region struct{ start, end uintptr }

func (r region) len() uintptr { return r.end - r.start }

// bytes is the region's memory. It must be mapped and readable.
func (r region) bytes() []byte {
	return unsafe.Slice((*byte)(r.ptr()), r.len())
}

// ptr is the region's start as a pointer. The memory is not Go's: it was
// mapped by mmap and is found in /proc/self/maps, so the garbage collector
// neither moves nor frees it.
func (r region) ptr() unsafe.Pointer {
	addr := r.start
	return *(*unsafe.Pointer)(unsafe.Pointer(&addr))
}

// anonExecRegions lists the process's anonymous, private, executable
// mappings (r-xp without a file): where wazero keeps compiled code.
// Adjacent mappings the kernel merged are one region.
func anonExecRegions() ([]region, error) {
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var rs []region
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// start-end perms offset dev inode [path]
		fields := strings.Fields(sc.Text())
		if len(fields) != 5 || fields[1] != "r-xp" || fields[4] != "0" {
			continue
		}
		lo, hi, ok := strings.Cut(fields[0], "-")
		if !ok {
			return nil, fmt.Errorf("bad range %q in /proc/self/maps", fields[0])
		}
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if err := errors.Join(err1, err2); err != nil {
			return nil, fmt.Errorf("bad range %q in /proc/self/maps: %w", fields[0], err)
		}
		rs = append(rs, region{uintptr(start), uintptr(end)})
	}
	return rs, sc.Err()
}

// newRegions is after less before: the parts of after's regions no region
// of before covers. Both are sorted and disjoint, as /proc/self/maps lists
// them; so is the result.
func newRegions(before, after []region) []region {
	var out []region
	for _, a := range after {
		cur := a.start
		for _, b := range before {
			if b.end <= cur || b.start >= a.end {
				continue
			}
			if b.start > cur {
				out = append(out, region{cur, b.start})
			}
			cur = max(cur, b.end)
		}
		if cur < a.end {
			out = append(out, region{cur, a.end})
		}
	}
	return out
}

// shareCode makes the module's compiled code, which wazero mapped since
// before (a list from anonExecRegions), shared between processes. The code
// is found in the new regions by what the digest's wazero cache file,
// under cacheDir, tells of it; it is written once to a file of
// cacheDir/shared named by its length and checksum, and replaced in place by
// a private, read-only mapping of that file. Every sandbox of an image
// loads the same bytes from the compilation cache, so they all map the
// same file and the page cache holds one copy of the code instead of one
// per process.
//
// The code is replaced only once the file's content is checked equal to
// it; on any error it keeps its private copy, which works the same. It
// returns the bytes now mapped from the file.
func shareCode(cacheDir string, before []region) (int64, error) {
	after, err := anonExecRegions()
	if err != nil {
		return 0, fmt.Errorf("list code regions: %w", err)
	}
	large := func(rs []region) []region {
		var out []region
		for _, r := range rs {
			if r.len() >= minSharedRegion {
				out = append(out, r)
			}
		}
		return out
	}
	fresh := large(newRegions(before, after))
	codes, err := cachedCodes(cacheDir)
	if err != nil {
		return 0, err
	}
	shared, errs := shareIn(cacheDir, fresh, codes)
	if shared == 0 && len(errs) == 0 {
		// Another module's code, freed (by a finalizer) between the two
		// listings, may have left the very addresses wazero then mapped
		// this one's at: those look old. Every code region still
		// anonymous is a candidate; shared ones are file mappings by now.
		shared, errs = shareIn(cacheDir, large(after), codes)
	}
	if shared == 0 && len(errs) == 0 && len(fresh) > 0 {
		errs = append(errs, fmt.Errorf("the code of %s is in none of the new code regions", cacheDir))
	}
	return shared, errors.Join(errs...)
}

// shareIn maps each of codes found in regions from its shared file.
func shareIn(cacheDir string, regions []region, codes []cachedCode) (int64, []error) {
	var shared int64
	var errs []error
	for _, r := range regions {
		for _, c := range codes {
			code, ok := locate(r, c)
			// A small module's code can sit in a large region when the
			// kernel merged its mapping with a neighbour's.
			if !ok || code.len() < minSharedRegion {
				continue
			}
			if err := mapFromFile(filepath.Join(cacheDir, sharedDirName), code); err != nil {
				errs = append(errs, fmt.Errorf("code at %#x-%#x: %w", code.start, code.end, err))
				continue
			}
			shared += int64(code.len())
		}
	}
	return shared, errs
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// sharedFileName names the file of content by its length and checksum: a
// sandbox binary built with another wazero, whose code differs, writes
// another file instead of failing to share forever. The checksum only
// names: the content is compared before any use.
func sharedFileName(content []byte, ext string) string {
	return fmt.Sprintf("%x-%08x%s", len(content), crc32.Checksum(content, castagnoli), ext)
}

// sharedView opens dir's file of content, writing it first if no process
// did yet, and returns it with a read-only shared mapping of it, checked
// equal to content. The file is never written in place (writeAtomic
// renames a new one over it), so the inode checked is the one mapped.
func sharedView(dir string, content []byte, ext string) (*os.File, []byte, error) {
	name := filepath.Join(dir, sharedFileName(content, ext))
	f, err := os.Open(name)
	if errors.Is(err, os.ErrNotExist) {
		if err = writeAtomic(dir, name, content); err == nil {
			f, err = os.Open(name)
		}
	}
	if err != nil {
		return nil, nil, err
	}
	view, err := unix.Mmap(int(f.Fd()), 0, len(content), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("map %s: %w", name, err)
	}
	if !bytes.Equal(view, content) {
		_ = unix.Munmap(view)
		f.Close()
		return nil, nil, fmt.Errorf("%s differs from the bytes in memory", name)
	}
	return f, view, nil
}

// mapFromFile replaces the read-only region r by a private read-only,
// executable mapping of a file of dir holding the same bytes.
func mapFromFile(dir string, r region) error {
	f, view, err := sharedView(dir, r.bytes(), ".code")
	if err != nil {
		return err
	}
	defer f.Close()
	// The page cache pages read for the check are the ones the region
	// will map.
	if err := unix.Munmap(view); err != nil {
		return fmt.Errorf("unmap %s: %w", f.Name(), err)
	}
	// MAP_FIXED replaces the old pages atomically; the bytes are the
	// same, so even a thread already running the code would not notice.
	if _, err := unix.MmapPtr(int(f.Fd()), 0, r.ptr(), r.len(),
		unix.PROT_READ|unix.PROT_EXEC, unix.MAP_PRIVATE|unix.MAP_FIXED); err != nil {
		return fmt.Errorf("map %s over the code: %w", f.Name(), err)
	}
	return nil
}

// writeAtomic writes data to name through a temporary file renamed over
// it, so that no process opens a partial file.
func writeAtomic(dir, name string, data []byte) (err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".code-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = os.Remove(tmp.Name())
		}
	}()
	if _, err = tmp.Write(data); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	if err = os.Chmod(tmp.Name(), 0o444); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), name)
}
