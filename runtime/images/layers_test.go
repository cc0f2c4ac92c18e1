package images

import (
	"archive/tar"
	"bytes"
	"errors"
	"testing"
)

// tarEntry is one header of a test layer; body is a regular file's
// content.
type tarEntry struct {
	name, link string
	typ        byte
	body       string
}

func layer(t *testing.T, entries ...tarEntry) *layerIndex {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: 0o755, Size: int64(len(e.body))}
		if e.typ != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if e.typ == tar.TypeReg {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	li, err := indexLayer(&buf)
	if err != nil {
		t.Fatal(err)
	}
	return li
}

func reg(name, body string) tarEntry { return tarEntry{name: name, typ: tar.TypeReg, body: body} }
func sym(name, link string) tarEntry { return tarEntry{name: name, link: link, typ: tar.TypeSymlink} }
func dir(name string) tarEntry       { return tarEntry{name: name, typ: tar.TypeDir} }

const wasmBody = "\x00asm\x01\x00\x00\x00"

func TestResolveThroughLayers(t *testing.T) {
	base := layer(t,
		dir("bin/"), reg("bin/tool.wasm", wasmBody), reg("opt/app/x.wasm", wasmBody),
		reg("./gone.wasm", wasmBody), reg("hidden/old.wasm", wasmBody), reg("elf", "\x7fELF"),
		tarEntry{name: "hard.wasm", link: "bin/tool.wasm", typ: tar.TypeLink},
	)
	top := layer(t,
		reg(".wh.gone.wasm", ""), reg("hidden/.wh..wh..opq", ""), reg("hidden/new", "x"),
		sym("app", "opt/app"), sym("abs", "/bin/tool.wasm"), sym("loop", "loop"),
		sym("up", "../../../bin/tool.wasm"), sym("elfy", "elf"),
	)
	layers := []*layerIndex{base, top}
	for _, c := range []struct {
		path, want string
		wantLayer  int
		err        error
	}{
		{path: "/bin/tool.wasm", want: "/bin/tool.wasm", wantLayer: 0},
		{path: "/app/x.wasm", want: "/opt/app/x.wasm"}, // symlinked parent, relative
		{path: "/abs", want: "/bin/tool.wasm"},         // absolute target stays in the image
		{path: "/up", want: "/bin/tool.wasm"},          // .. stops at the image's root
		{path: "/hard.wasm", want: "/bin/tool.wasm"},   // hard link
		{path: "/elfy", want: "/elf"},                  // resolves; the magic decides later
		{path: "/gone.wasm", err: errNoFile},           // whiteout
		{path: "/hidden/old.wasm", err: errNoFile},     // opaque directory
		{path: "/loop", err: errLinkLoop},              // symlink loop
		{path: "/bin", err: errNotRegular},             // a directory
		{path: "/bin/tool.wasm/x", err: errNoFile},     // a file as a parent
		{path: "/nope", err: errNoFile},                // missing
	} {
		r, err := resolve(layers, c.path)
		if c.err != nil {
			if !errors.Is(err, c.err) {
				t.Errorf("resolve(%s) = %+v, %v; want error %v", c.path, r, err, c.err)
			}
			continue
		}
		if err != nil || r.path != c.want || r.layer != c.wantLayer {
			t.Errorf("resolve(%s) = %s in layer %d, %v; want %s in layer %d", c.path, r.path, r.layer, err, c.want, c.wantLayer)
		}
	}
	if r, err := resolve(layers, "/hidden/new"); err != nil || r.layer != 1 {
		t.Errorf("a file beside an opaque marker: %+v, %v", r, err)
	}
	if r, _ := resolve(layers, "/bin/tool.wasm"); string(r.entry.head) != "\x00asm" {
		t.Errorf("head of /bin/tool.wasm = %q", r.entry.head)
	}

	// A file deleted below and written again above is the upper one.
	again := layer(t, reg("gone.wasm", "new"))
	if r, err := resolve([]*layerIndex{base, top, again}, "/gone.wasm"); err != nil || r.layer != 2 {
		t.Errorf("re-created file: %+v, %v", r, err)
	}
	// A whiteout of a parent directory deletes what is under it.
	if _, err := resolve([]*layerIndex{base, layer(t, reg(".wh.opt", ""))}, "/opt/app/x.wasm"); !errors.Is(err, errNoFile) {
		t.Errorf("file under a deleted directory: %v", err)
	}
}

func TestCopyEntry(t *testing.T) {
	var lt bytes.Buffer
	tw := tar.NewWriter(&lt)
	for _, e := range []tarEntry{reg("./a", "first"), reg("b/c.wasm", wasmBody)} {
		_ = tw.WriteHeader(&tar.Header{Name: e.name, Typeflag: e.typ, Size: int64(len(e.body)), Mode: 0o644})
		_, _ = tw.Write([]byte(e.body))
	}
	_ = tw.Close()
	var out bytes.Buffer
	if err := copyEntry(bytes.NewReader(lt.Bytes()), "/b/c.wasm", &out); err != nil || out.String() != wasmBody {
		t.Fatalf("copyEntry = %q, %v", out.String(), err)
	}
	if err := copyEntry(bytes.NewReader(lt.Bytes()), "/zzz", &out); !errors.Is(err, errNoFile) {
		t.Fatalf("copyEntry of a missing file: %v", err)
	}
}
