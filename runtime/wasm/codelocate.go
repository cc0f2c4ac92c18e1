package wasm

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// wazeroMagic opens each of wazero's compilation cache files.
var wazeroMagic = []byte("WAZEVO")

// cachedCode is what a wazero cache file tells of a module's compiled
// code: its length and its first bytes, enough to find it in memory.
type cachedCode struct {
	size int
	head []byte
}

// cachedCodes reads the code of every module in a digest's cache directory
// (one, unless an older wazero left its own).
func cachedCodes(cacheDir string) ([]cachedCode, error) {
	files, err := filepath.Glob(filepath.Join(cacheDir, "wazero-*", "*"))
	if err != nil {
		return nil, err
	}
	var codes []cachedCode
	var errs []error
	for _, name := range files {
		if filepath.Ext(name) == ".tmp" {
			continue
		}
		c, err := readCachedCode(name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		codes = append(codes, c)
	}
	if len(codes) == 0 {
		return nil, errors.Join(append(errs, fmt.Errorf("no compiled module in %s", cacheDir))...)
	}
	return codes, nil
}

func readCachedCode(name string) (cachedCode, error) {
	f, err := os.Open(name)
	if err != nil {
		return cachedCode{}, err
	}
	defer f.Close()
	c, err := parseCachedCode(bufio.NewReader(f))
	if err != nil {
		return cachedCode{}, fmt.Errorf("%s: %w", name, err)
	}
	return c, nil
}

// parseCachedCode reads the head of a wazero cache file: magic, version
// length and version, function count, one 8-byte offset per function, the
// code's length, then the code.
func parseCachedCode(r io.Reader) (cachedCode, error) {
	head := make([]byte, len(wazeroMagic)+1)
	if _, err := io.ReadFull(r, head); err != nil {
		return cachedCode{}, fmt.Errorf("read header: %w", err)
	}
	if !bytes.Equal(head[:len(wazeroMagic)], wazeroMagic) {
		return cachedCode{}, errors.New("not a wazero compilation cache file")
	}
	var funcs uint32
	if _, err := io.CopyN(io.Discard, r, int64(head[len(wazeroMagic)])); err != nil {
		return cachedCode{}, fmt.Errorf("read version: %w", err)
	}
	if err := binary.Read(r, binary.LittleEndian, &funcs); err != nil {
		return cachedCode{}, fmt.Errorf("read function count: %w", err)
	}
	if _, err := io.CopyN(io.Discard, r, 8*int64(funcs)); err != nil {
		return cachedCode{}, fmt.Errorf("read function offsets: %w", err)
	}
	var size uint64
	if err := binary.Read(r, binary.LittleEndian, &size); err != nil {
		return cachedCode{}, fmt.Errorf("read code length: %w", err)
	}
	if size == 0 || size > 1<<40 {
		return cachedCode{}, fmt.Errorf("code length %d", size)
	}
	c := cachedCode{size: int(size), head: make([]byte, min(int(size), os.Getpagesize()))}
	if _, err := io.ReadFull(r, c.head); err != nil {
		return cachedCode{}, fmt.Errorf("read code: %w", err)
	}
	return c, nil
}

// locate finds c in r: wazero maps a module's code on its own, so it
// starts at a page boundary and spans whole pages, but the kernel may have
// merged that mapping with a neighbour (wazero maps the module's entry
// preambles right after its code), so r can be larger.
func locate(r region, c cachedCode) (region, bool) {
	page := uintptr(os.Getpagesize())
	size := (uintptr(c.size) + page - 1) &^ (page - 1)
	for start := r.start; start+size <= r.end; start += page {
		if bytes.Equal(region{start, start + uintptr(len(c.head))}.bytes(), c.head) {
			return region{start, start + size}, true
		}
	}
	return region{}, false
}
