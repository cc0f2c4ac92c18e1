package wasm

import (
	"cmp"
	"errors"
	"fmt"
	"reflect"
	"slices"

	"github.com/tetratelabs/wazero"
)

// maxDataGap is the largest run of zeroes between two data segments that
// merging fills in: a segment costs wazero about 80 bytes of heap besides
// its data (its record, its offset expression, the rounding of its
// allocation).
const maxDataGap = 64

const (
	opI32Const = 0x41
	opEnd      = 0x0b
)

// mergeDataSegments merges the decoded module's active data segments that
// follow each other in memory into fewer, larger ones, and returns how
// many segments there were and are.
//
// Go's linker emits a data segment for every stretch of non-zero data,
// about 90,000 for a net/http server, which wazero keeps on the heap for
// the module's life as one record and two allocations each: 5 MB beyond
// the 2.4 MB of data itself, in every sandbox. Merged, an instance's
// memory starts the same: the module defines its memory, so it starts
// zeroed, and no segments overlap, so neither their order nor the zeroes
// filling a gap change what they write. Segments are addressed by index
// only by memory.init and data.drop, which need a data count section; a
// module with one, with a passive segment, an offset other than an
// i32.const, or overlapping segments, is left as it is. wazero offers no
// way to do this, so the segments are replaced through reflection on its
// unexported fields; if those are not as expected, nothing is touched.
//
// With dir, the merged data are read from a file of dir shared by every
// process (see shareData); view is its mapping, to unmap once the module
// is closed. If sharing fails, the data stay on the heap and err says why.
func mergeDataSegments(compiled wazero.CompiledModule, dir string) (view []byte, before, after int, err error) {
	mod, err := decodedModule(compiled)
	if err != nil {
		return nil, 0, 0, err
	}
	section := mod.FieldByName("DataSection")
	dataCount := mod.FieldByName("DataCountSection")
	if section.Kind() != reflect.Slice || section.Type().Elem().Kind() != reflect.Struct || dataCount.Kind() != reflect.Pointer {
		return nil, 0, 0, errors.New("decoded module has no data section")
	}
	n := section.Len()
	if len(compiled.ImportedMemories()) > 0 || !dataCount.IsNil() {
		return nil, n, n, nil
	}
	segs, err := readSegments(section)
	if errors.Is(err, errNotMergeable) {
		return nil, n, n, nil
	} else if err != nil {
		return nil, n, n, err
	}
	merged, data := mergeSegments(segs)
	if len(merged) == len(segs) {
		return nil, n, n, nil
	}
	var shareErr error
	if dir != "" && len(data) > 0 {
		if view, shareErr = shareData(dir, data); shareErr == nil {
			pos := 0
			for i := range merged {
				size := len(merged[i].data)
				merged[i].data = view[pos : pos+size : pos+size]
				pos += size
			}
		}
	}
	out := reflect.MakeSlice(section.Type(), len(merged), len(merged))
	for i, s := range merged {
		e := out.Index(i)
		settable(e.FieldByName("OffsetExpression").FieldByName("Data")).SetBytes(i32Const(s.offset))
		settable(e.FieldByName("Init")).SetBytes(s.data)
	}
	settable(section).Set(out)
	return view, n, len(merged), shareErr
}

// shareData returns a read-only shared mapping of a file of dir holding
// data, so that the data of every sandbox of an image is one copy in the
// page cache; read only when an instance starts, it is mostly not even
// resident.
func shareData(dir string, data []byte) ([]byte, error) {
	f, view, err := sharedView(dir, data, ".data")
	if err != nil {
		return nil, fmt.Errorf("share merged data: %w", err)
	}
	f.Close()
	return view, nil
}

// decodedModule is the wasm.Module struct wazero decoded compiled into.
func decodedModule(compiled wazero.CompiledModule) (reflect.Value, error) {
	v := reflect.ValueOf(compiled)
	if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
		return reflect.Value{}, errors.New("compiled module is not a pointer to a struct")
	}
	mod := v.Elem().FieldByName("module")
	if mod.Kind() != reflect.Pointer || mod.IsNil() || mod.Elem().Kind() != reflect.Struct {
		return reflect.Value{}, errors.New("compiled module has no decoded module")
	}
	return mod.Elem(), nil
}

// errNotMergeable marks data segments that are not to be merged.
var errNotMergeable = errors.New("data segments not mergeable")

// segment is an active data segment at a constant offset.
type segment struct {
	offset uint32
	data   []byte
}

// readSegments reads the data section's segments, sorted by offset,
// failing with errNotMergeable on any that is not an active segment at an
// i32.const offset and on segments that overlap.
func readSegments(section reflect.Value) ([]segment, error) {
	typ := section.Type().Elem()
	init, ok1 := typ.FieldByName("Init")
	passive, ok2 := typ.FieldByName("Passive")
	expr, ok3 := typ.FieldByName("OffsetExpression")
	if !ok1 || !ok2 || !ok3 || init.Type != reflect.TypeFor[[]byte]() || passive.Type != reflect.TypeFor[bool]() || expr.Type.Kind() != reflect.Struct {
		return nil, errors.New("data segment is not as expected")
	}
	exprData, ok := expr.Type.FieldByName("Data")
	if !ok || exprData.Type != reflect.TypeFor[[]byte]() || len(init.Index) != 1 || len(passive.Index) != 1 || len(expr.Index) != 1 || len(exprData.Index) != 1 {
		return nil, errors.New("offset expression is not as expected")
	}
	// Fields by index: by name, 90,000 segments take 20 ms.
	iInit, iPassive, iExpr, iData := init.Index[0], passive.Index[0], expr.Index[0], exprData.Index[0]
	segs := make([]segment, section.Len())
	for i := range segs {
		s := section.Index(i)
		if s.Field(iPassive).Bool() {
			return nil, fmt.Errorf("data segment %d is passive: %w", i, errNotMergeable)
		}
		offset, ok := parseI32Const(s.Field(iExpr).Field(iData).Bytes())
		if !ok {
			return nil, fmt.Errorf("data segment %d has no constant offset: %w", i, errNotMergeable)
		}
		segs[i] = segment{offset: offset, data: s.Field(iInit).Bytes()}
	}
	// Segments that do not overlap make the same memory in any order.
	slices.SortStableFunc(segs, func(a, b segment) int { return cmp.Compare(a.offset, b.offset) })
	for i := 1; i < len(segs); i++ {
		if uint64(segs[i].offset) < uint64(segs[i-1].offset)+uint64(len(segs[i-1].data)) {
			return nil, fmt.Errorf("data segments at %d and %d overlap: %w", segs[i-1].offset, segs[i].offset, errNotMergeable)
		}
	}
	return segs, nil
}

// mergeSegments merges runs of ordered segments no more than maxDataGap
// apart; the merged data are consecutive parts of data.
func mergeSegments(segs []segment) (merged []segment, data []byte) {
	if len(segs) == 0 {
		return nil, nil
	}
	var runs [][2]int // [first, last] of each run
	first := 0
	for i := 1; i <= len(segs); i++ {
		if i == len(segs) || uint64(segs[i].offset)-(uint64(segs[i-1].offset)+uint64(len(segs[i-1].data))) > maxDataGap {
			runs = append(runs, [2]int{first, i - 1})
			first = i
		}
	}
	total := 0
	for _, r := range runs {
		last := segs[r[1]]
		total += int(last.offset) + len(last.data) - int(segs[r[0]].offset)
	}
	data = make([]byte, total)
	buf := data
	out := make([]segment, 0, len(runs))
	for _, r := range runs {
		start := segs[r[0]].offset
		last := segs[r[1]]
		size := int(last.offset) + len(last.data) - int(start)
		part := buf[:size:size]
		buf = buf[size:]
		for _, s := range segs[r[0] : r[1]+1] {
			copy(part[s.offset-start:], s.data)
		}
		out = append(out, segment{offset: start, data: part})
	}
	return out, data
}

// parseI32Const reads a constant expression `i32.const n; end` with n a
// non-negative offset.
func parseI32Const(expr []byte) (uint32, bool) {
	if len(expr) < 3 || expr[0] != opI32Const || expr[len(expr)-1] != opEnd {
		return 0, false
	}
	var v int64
	var shift uint
	body := expr[1 : len(expr)-1]
	for i, b := range body {
		if shift >= 35 {
			return 0, false
		}
		v |= int64(b&0x7f) << shift
		shift += 7
		if b&0x80 == 0 {
			if i != len(body)-1 {
				return 0, false
			}
			if b&0x40 != 0 {
				v |= -1 << shift // sign-extend
			}
			if v < 0 || v > 1<<31-1 {
				return 0, false
			}
			return uint32(v), true
		}
	}
	return 0, false
}

// i32Const encodes `i32.const n; end` for a non-negative n.
func i32Const(n uint32) []byte {
	out := []byte{opI32Const}
	v := int64(n)
	for {
		b := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && b&0x40 == 0) || (v == -1 && b&0x40 != 0) {
			out = append(out, b)
			break
		}
		out = append(out, b|0x80)
	}
	return append(out, opEnd)
}
