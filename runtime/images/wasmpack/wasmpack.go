package wasmpack

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	distref "github.com/distribution/reference"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The image's shape.
const (
	// ModulePath is where the module sits in the image, and its
	// entrypoint.
	ModulePath = "/app.wasm"
	// OS and Architecture are the image config's platform.
	OS           = "wasip1"
	Architecture = "wasm"
	// Label marks the image config (and the manifest, as an annotation)
	// as a packaged wasm module, for people and tools looking at it; the
	// node decides by the entrypoint's magic bytes, not by this.
	Label = "wasmkube.io/wasm"
)

// Annotation keys of an OCI layout's index. containerd names an imported
// image after the first and falls back to the second, which the OCI spec
// allows to be a bare tag.
const (
	annotationContainerdName = "io.containerd.image.name"
	annotationOCIRefName     = "org.opencontainers.image.ref.name"
)

// Magic starts every WebAssembly binary.
var Magic = []byte("\x00asm")

// ErrNotWasm means a file is not a WebAssembly binary.
var ErrNotWasm = errors.New("not a WebAssembly module (it does not start with the bytes \\0asm)")

// IsWasm reports whether head, the start of a file, is a WebAssembly
// binary.
func IsWasm(head []byte) bool { return bytes.HasPrefix(head, Magic) }

// CheckModule accepts a WebAssembly core module and refuses anything else
// with an error that says what it is instead: the node's engine runs WASI
// preview 1 core modules, not components.
func CheckModule(b []byte) error {
	if !IsWasm(b) {
		return ErrNotWasm
	}
	if len(b) < 8 {
		return errors.New("truncated WebAssembly module: no version after the magic bytes")
	}
	// Version 1 is a core module; components put their own version and
	// layer number here.
	if !bytes.Equal(b[4:8], []byte{1, 0, 0, 0}) {
		return fmt.Errorf("a WebAssembly binary of version/layer % x, not a core module (version 1): components are not supported, build for wasip1", b[4:8])
	}
	return nil
}

// Image packages module as a wasip1/wasm OCI image. The module is checked
// with CheckModule.
func Image(module []byte) (v1.Image, error) {
	if err := CheckModule(module); err != nil {
		return nil, err
	}
	layerTar, err := SingleFileTar(ModulePath[1:], module, 0o755)
	if err != nil {
		return nil, fmt.Errorf("layer tar: %w", err)
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}
	base := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	base = mutate.ConfigMediaType(base, types.OCIConfigJSON)
	img, err := mutate.AppendLayers(base, layer)
	if err != nil {
		return nil, fmt.Errorf("append layer: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("image config: %w", err)
	}
	cf = cf.DeepCopy()
	cf.OS = OS
	cf.Architecture = Architecture
	cf.Config.Entrypoint = []string{ModulePath}
	cf.Config.Labels = map[string]string{Label: "true"}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return nil, fmt.Errorf("image config: %w", err)
	}
	return mutate.Annotations(img, map[string]string{Label: "true"}).(v1.Image), nil
}

// Normalize turns a reference into the full docker name an import stores
// it under ("hello:v1" is docker.io/library/hello:v1) and checks it names
// a tag.
func Normalize(ref string) (full, tag string, err error) {
	named, err := distref.ParseDockerRef(ref)
	if err != nil {
		return "", "", fmt.Errorf("image reference %q: %w", ref, err)
	}
	tagged, ok := named.(distref.Tagged)
	if !ok {
		return "", "", fmt.Errorf("image reference %q names a digest; give a tag (NAME:TAG)", ref)
	}
	return named.String(), tagged.Tag(), nil
}

// WriteOCIArchive writes img as an OCI image layout in a tar at path,
// named ref, so that an import stores it under ref's full docker name. The
// archive appears at path whole or not at all.
func WriteOCIArchive(path string, img v1.Image, ref string) error {
	full, tag, err := Normalize(ref)
	if err != nil {
		return err
	}
	tmpDir, err := os.MkdirTemp(filepath.Dir(path), "."+filepath.Base(path)+".layout-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.RemoveAll(tmpDir)
	layoutDir := filepath.Join(tmpDir, "layout")
	p, err := layout.Write(layoutDir, empty.Index)
	if err != nil {
		return fmt.Errorf("create OCI layout: %w", err)
	}
	err = p.AppendImage(img, layout.WithAnnotations(map[string]string{
		annotationContainerdName: full,
		annotationOCIRefName:     tag,
	}))
	if err != nil {
		return fmt.Errorf("write OCI layout: %w", err)
	}
	tmp := filepath.Join(tmpDir, "archive.tar")
	if err := tarDir(layoutDir, tmp); err != nil {
		return fmt.Errorf("tar OCI layout: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// PackFile reads the module at modulePath and writes its image, named ref,
// as an OCI archive at out.
func PackFile(modulePath, ref, out string) error {
	module, err := os.ReadFile(modulePath)
	if err != nil {
		return fmt.Errorf("read module: %w", err)
	}
	img, err := Image(module)
	if err != nil {
		return fmt.Errorf("%s: %w", modulePath, err)
	}
	return WriteOCIArchive(out, img, ref)
}

// SingleFileTar is a layer tar holding one regular file, name relative to
// the root.
func SingleFileTar(name string, data []byte, mode int64) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
		return nil, err
	}
	if _, err := tw.Write(data); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// tarDir writes the tree under dir into a tar at dst, with paths relative
// to dir, as an OCI layout archive wants.
func tarDir(dir, dst string) (err error) {
	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	tw := tar.NewWriter(f)
	if err := tw.AddFS(os.DirFS(dir)); err != nil {
		return err
	}
	return tw.Close()
}
