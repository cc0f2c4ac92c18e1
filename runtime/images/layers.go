package images

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
)

// Whiteout names of the OCI layer format: a file .wh.NAME deletes NAME of
// the layers below; .wh..wh..opq in a directory hides everything the layers
// below have in it.
const (
	whiteoutPrefix = ".wh."
	whiteoutOpaque = ".wh..wh..opq"
)

// maxLinkHops bounds symlink resolution, as the kernel's ELOOP does.
const maxLinkHops = 8

// headLen is how much of each regular file the index keeps: enough for the
// wasm magic.
const headLen = 4

// layerEntry is what a layer says of one path.
type layerEntry struct {
	typ      byte // tar type flag; tar.TypeDir for implicit parents
	linkname string
	head     []byte // first bytes of a regular file
	implicit bool   // a parent directory with no entry of its own
}

// layerIndex is one layer's tar, headers only (and the first bytes of
// each file): enough to resolve a path through the layers without keeping
// their content.
type layerIndex struct {
	entries   map[string]layerEntry // by clean absolute path
	whiteouts map[string]bool       // paths deleted from the layers below
	opaque    map[string]bool       // directories hiding the layers below
}

// cleanPath makes a tar entry name or a link target absolute and clean.
func cleanPath(p string) string { return path.Clean("/" + p) }

// indexLayer reads a layer tar (uncompressed) into its index.
func indexLayer(r io.Reader) (*layerIndex, error) {
	li := &layerIndex{entries: map[string]layerEntry{}, whiteouts: map[string]bool{}, opaque: map[string]bool{}}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return li, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read layer tar: %w", err)
		}
		p := cleanPath(h.Name)
		dir, base := path.Split(p)
		dir = path.Clean(dir)
		switch {
		case base == whiteoutOpaque:
			li.opaque[dir] = true
			li.addParents(dir)
			continue
		case strings.HasPrefix(base, whiteoutPrefix):
			li.whiteouts[path.Join(dir, base[len(whiteoutPrefix):])] = true
			li.addParents(dir)
			continue
		}
		e := layerEntry{typ: h.Typeflag, linkname: h.Linkname}
		if h.Typeflag == tar.TypeReg || h.Typeflag == tar.TypeRegA {
			e.typ = tar.TypeReg
			head := make([]byte, headLen)
			n, err := io.ReadFull(tr, head)
			if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("read %s in layer tar: %w", p, err)
			}
			e.head = head[:n]
		}
		li.entries[p] = e
		li.addParents(dir)
	}
}

// addParents records the directories above an entry that the tar does not
// list: they exist in the unpacked layer all the same.
func (li *layerIndex) addParents(dir string) {
	for d := dir; d != "/"; d = path.Dir(d) {
		if _, ok := li.entries[d]; ok {
			return
		}
		li.entries[d] = layerEntry{typ: tar.TypeDir, implicit: true}
	}
}

// hides reports whether the layer hides p of the layers below without
// having p itself: a whiteout of p or of a parent, or an opaque parent.
func (li *layerIndex) hides(p string) bool {
	if li.whiteouts[p] {
		return true
	}
	for d := path.Dir(p); ; d = path.Dir(d) {
		if li.whiteouts[d] || li.opaque[d] {
			return true
		}
		if d == "/" {
			return false
		}
	}
}

// lookup finds what the merged layers (bottom first) hold at p, with no
// symlink followed: the top-most layer with an entry wins, unless a layer
// above it deleted or hid it. An implicit directory does not hide an entry
// below: it only says a child exists.
func lookup(layers []*layerIndex, p string) (layerEntry, int, bool) {
	var implicit *layerEntry
	at := -1
	for i := len(layers) - 1; i >= 0; i-- {
		li := layers[i]
		if e, ok := li.entries[p]; ok {
			if !e.implicit {
				return e, i, true
			}
			if implicit == nil {
				implicit, at = &e, i
			}
		}
		if li.hides(p) {
			break
		}
	}
	if implicit != nil {
		return *implicit, at, true
	}
	return layerEntry{}, -1, false
}

// resolved is the file a path names in the merged layers.
type resolved struct {
	path  string // in the image, after symlinks
	layer int    // index of the layer holding its content
	entry layerEntry
}

// errNoFile and its kin say why a path names no regular file.
var (
	errNoFile     = errors.New("no such file in the image")
	errNotRegular = errors.New("not a regular file in the image")
	errLinkLoop   = errors.New("too many levels of symbolic links in the image")
)

// resolve follows p through the merged layers, component by component as
// the kernel does, to the regular file it names. Symlinks are followed
// inside the image only: an absolute target starts again at the image's
// root.
func resolve(layers []*layerIndex, p string) (resolved, error) {
	hops := 0
	p = cleanPath(p)
walk:
	for {
		parts := strings.Split(strings.TrimPrefix(p, "/"), "/")
		cur := "/"
		for i, part := range parts {
			next := path.Join(cur, part)
			e, layer, ok := lookup(layers, next)
			if !ok {
				return resolved{}, errNoFile
			}
			last := i == len(parts)-1
			switch e.typ {
			case tar.TypeSymlink:
				if hops++; hops > maxLinkHops {
					return resolved{}, errLinkLoop
				}
				target := e.linkname
				if !path.IsAbs(target) {
					target = path.Join(cur, target)
				}
				p = cleanPath(path.Join(append([]string{target}, parts[i+1:]...)...))
				continue walk
			case tar.TypeLink:
				// A hard link names another entry of the same tar
				// archive, by its path from the root.
				if !last {
					return resolved{}, errNotRegular
				}
				if hops++; hops > maxLinkHops {
					return resolved{}, errLinkLoop
				}
				target := cleanPath(e.linkname)
				te, ok := layers[layer].entries[target]
				if !ok || te.typ != tar.TypeReg {
					return resolved{}, errNoFile
				}
				return resolved{path: target, layer: layer, entry: te}, nil
			case tar.TypeReg:
				if !last {
					return resolved{}, errNoFile
				}
				return resolved{path: next, layer: layer, entry: e}, nil
			case tar.TypeDir:
				if last {
					return resolved{}, errNotRegular
				}
				cur = next
			default:
				return resolved{}, errNotRegular
			}
		}
		return resolved{}, errNotRegular // p was "/"
	}
}

// copyEntry streams the content of the regular file p of a layer tar
// (uncompressed) to w.
func copyEntry(r io.Reader, p string, w io.Writer) error {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("%s: %w", p, errNoFile)
		}
		if err != nil {
			return fmt.Errorf("read layer tar: %w", err)
		}
		if cleanPath(h.Name) != p || (h.Typeflag != tar.TypeReg && h.Typeflag != tar.TypeRegA) {
			continue
		}
		if _, err := io.Copy(w, tr); err != nil {
			return fmt.Errorf("read %s from layer tar: %w", p, err)
		}
		return nil
	}
}
