package images

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/archive/compression"
	"github.com/containerd/containerd/content"
	"github.com/containerd/containerd/images"
	"github.com/containerd/platforms"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/singleflight"

	"github.com/wasmkube/wasmkube/runtime/images/wasmpack"
)

// ErrNotWasm means a container that must run as wasm (its pod's
// runtimeClassName is wasm) has a command that is not a WebAssembly
// module. RequireWasmModule wraps it with the image and the path.
var ErrNotWasm = wasmpack.ErrNotWasm

// defaultPath is the PATH a bare command is looked up in when the image's
// config sets none, runc's and docker's default.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Store is the node's image store as one value: the containerd client and
// what was learned from images, kept in memory so that an image's layers
// are read once for a given command, not once per container.
type Store struct {
	client *containerd.Client

	mu      sync.Mutex
	modules map[moduleKey]moduleFacts
	// docs holds the manifest and config of each image target read so
	// far. They are content-addressed, so an entry never goes stale; it
	// saves a container start the content store's round trips.
	docs   map[digest.Digest]imageDocs
	flight singleflight.Group
	// files serializes writing module files and their references.
	files sync.Mutex
}

// NewStore returns the store of the images client holds under the node's
// namespace.
func NewStore(client *containerd.Client) *Store {
	return &Store{client: client, modules: map[moduleKey]moduleFacts{}, docs: map[digest.Digest]imageDocs{}}
}

// WasmModule is a container's WebAssembly module, ready to run.
type WasmModule struct {
	// Path is the module on the host: dir/<sha256 of its content>.wasm.
	// Empty when the command is not a module.
	Path string
	// ImageDigest is the digest of the image's target (its manifest or
	// index), the key of everything derived from the image.
	ImageDigest string
	// Argv is the command line by the Kubernetes rules against the
	// image's ENTRYPOINT and CMD; Argv[0] is the command as given.
	Argv []string
	// Env is the image config's environment.
	Env []string
	// WorkingDir is the image config's working directory.
	WorkingDir string
}

// moduleKey is one command of one image.
type moduleKey struct {
	image digest.Digest
	argv0 string
}

// moduleFacts is what a scan of the layers found for a command.
type moduleFacts struct {
	wasm     bool
	why      error  // why it is not a module
	file     string // path in the image, after links
	layer    ocispec.Descriptor
	checksum string // sha256 hex of the module, once extracted
}

// WasmModule tells whether the container of image ref with the given
// command and args runs a WebAssembly module: whether the file its argv[0]
// names in the image starts with \0asm. If so the module is extracted
// once to dir (atomically, named after its content) and ok is true. A
// command that is not a module is ok=false with no error; the decision
// is remembered per image digest and command, so ordinary images pay for
// the scan of their layers once.
func (s *Store) WasmModule(ctx context.Context, ref string, command, args []string, dir string) (WasmModule, bool, error) {
	m, why, err := s.wasmModule(ctx, ref, command, args, dir)
	if err != nil {
		return WasmModule{}, false, err
	}
	return m, why == nil, nil
}

// RequireWasmModule is WasmModule for a container that must run as wasm:
// a command that is not a module is an error that says which file and why,
// wrapping ErrNotWasm.
func (s *Store) RequireWasmModule(ctx context.Context, ref string, command, args []string, dir string) (WasmModule, error) {
	m, why, err := s.wasmModule(ctx, ref, command, args, dir)
	if err != nil {
		return WasmModule{}, err
	}
	if why != nil {
		if errors.Is(why, ErrNotWasm) {
			return WasmModule{}, fmt.Errorf("image %s: command %s: %w", ref, m.Argv[0], why)
		}
		return WasmModule{}, fmt.Errorf("image %s: command %s: %v: %w", ref, m.Argv[0], why, ErrNotWasm)
	}
	return m, nil
}

func (s *Store) wasmModule(ctx context.Context, ref string, command, args []string, dir string) (WasmModule, error, error) {
	ctx = WithNamespace(ctx)
	img, err := Get(ctx, s.client, ref)
	if err != nil {
		return WasmModule{}, nil, err
	}
	target := img.Target()
	d, err := s.imageDocs(ctx, target)
	if err != nil {
		return WasmModule{}, nil, fmt.Errorf("image %s: %w", ref, err)
	}
	manifest, config := d.manifest, d.config
	argv, err := Argv(config.Config, command, args)
	if err != nil {
		return WasmModule{}, nil, fmt.Errorf("image %s: %w", ref, err)
	}
	m := WasmModule{ImageDigest: target.Digest.String(), Argv: argv, Env: config.Config.Env, WorkingDir: config.Config.WorkingDir}

	key := moduleKey{image: target.Digest, argv0: argv[0]}
	facts, err := s.facts(ctx, key, manifest, config.Config)
	if err != nil {
		return WasmModule{}, nil, fmt.Errorf("image %s: %w", ref, err)
	}
	if !facts.wasm {
		return m, facts.why, nil
	}
	if m.Path, err = s.extract(ctx, key, facts, dir); err != nil {
		return WasmModule{}, nil, fmt.Errorf("image %s: extract module %s: %w", ref, facts.file, err)
	}
	return m, nil, nil
}

// imageDocs is the manifest and config of an image.
type imageDocs struct {
	manifest ocispec.Manifest
	config   ocispec.Image
}

// imageDocs reads target's manifest (for this node's platform, or wasm)
// and config, once per target.
func (s *Store) imageDocs(ctx context.Context, target ocispec.Descriptor) (imageDocs, error) {
	s.mu.Lock()
	d, ok := s.docs[target.Digest]
	s.mu.Unlock()
	if ok {
		return d, nil
	}
	cs := s.client.ContentStore()
	var err error
	if d.manifest, err = images.Manifest(ctx, cs, target, nodeOrWasm); err != nil {
		return imageDocs{}, fmt.Errorf("manifest: %w", err)
	}
	if err := readJSON(ctx, cs, d.manifest.Config, &d.config); err != nil {
		return imageDocs{}, fmt.Errorf("config: %w", err)
	}
	s.mu.Lock()
	s.docs[target.Digest] = d
	s.mu.Unlock()
	return d, nil
}

// nodeOrWasm picks, from an image index, the node's own platform or else a
// wasm one: a multi-platform index can carry a wasm build beside native
// ones.
var nodeOrWasm = platforms.Ordered(platforms.DefaultSpec(),
	ocispec.Platform{OS: wasmpack.OS, Architecture: wasmpack.Architecture},
	ocispec.Platform{OS: "wasi", Architecture: "wasm"})

// Argv applies the Kubernetes rules: command replaces the image's
// ENTRYPOINT and drops its CMD; args alone keep the ENTRYPOINT and replace
// CMD; neither keeps both.
func Argv(img ocispec.ImageConfig, command, args []string) ([]string, error) {
	var out []string
	switch {
	case len(command) > 0:
		out = append(append(out, command...), args...)
	case len(args) > 0:
		out = append(append(out, img.Entrypoint...), args...)
	default:
		out = append(append(out, img.Entrypoint...), img.Cmd...)
	}
	if len(out) == 0 {
		return nil, errors.New("no command: the image has no entrypoint or cmd and none is given")
	}
	return out, nil
}

// facts returns what the layers say of key's command, scanning them the
// first time only; concurrent first asks share one scan.
func (s *Store) facts(ctx context.Context, key moduleKey, manifest ocispec.Manifest, config ocispec.ImageConfig) (moduleFacts, error) {
	s.mu.Lock()
	f, ok := s.modules[key]
	s.mu.Unlock()
	if ok {
		return f, nil
	}
	v, err, _ := s.flight.Do(key.image.String()+"\x00"+key.argv0, func() (any, error) {
		f, err := s.scan(ctx, manifest, config, key.argv0)
		if err != nil {
			return moduleFacts{}, err
		}
		s.mu.Lock()
		s.modules[key] = f
		s.mu.Unlock()
		return f, nil
	})
	if err != nil {
		return moduleFacts{}, err
	}
	return v.(moduleFacts), nil
}

// scan indexes the image's layers and resolves argv0 in them: as a path
// when it has a slash (relative to the working directory), else through
// the image's PATH, as runc looks a command up.
func (s *Store) scan(ctx context.Context, manifest ocispec.Manifest, config ocispec.ImageConfig, argv0 string) (moduleFacts, error) {
	layers := make([]*layerIndex, len(manifest.Layers))
	for i, desc := range manifest.Layers {
		err := s.readLayer(ctx, desc, func(r io.Reader) error {
			li, err := indexLayer(r)
			layers[i] = li
			return err
		})
		if err != nil {
			return moduleFacts{}, fmt.Errorf("layer %s: %w", desc.Digest, err)
		}
	}
	var candidates []string
	switch {
	case strings.Contains(argv0, "/"):
		candidates = []string{path.Join("/", config.WorkingDir, argv0)}
	default:
		search := defaultPath
		for _, e := range config.Env {
			if v, ok := strings.CutPrefix(e, "PATH="); ok {
				search = v
			}
		}
		for _, d := range filepath.SplitList(search) {
			if d != "" {
				candidates = append(candidates, path.Join("/", d, argv0))
			}
		}
	}
	why := errNoFile
	for _, c := range candidates {
		r, err := resolve(layers, c)
		if err != nil {
			if !errors.Is(err, errNoFile) {
				why = err
			}
			continue
		}
		if !wasmpack.IsWasm(r.entry.head) {
			return moduleFacts{why: fmt.Errorf("%s: %w", r.path, ErrNotWasm)}, nil
		}
		return moduleFacts{wasm: true, file: r.path, layer: manifest.Layers[r.layer]}, nil
	}
	return moduleFacts{why: why}, nil
}

// readLayer hands fn the uncompressed tar of a layer from the content
// store.
func (s *Store) readLayer(ctx context.Context, desc ocispec.Descriptor, fn func(io.Reader) error) error {
	ra, err := s.client.ContentStore().ReaderAt(ctx, desc)
	if err != nil {
		return fmt.Errorf("open: %w", err)
	}
	defer ra.Close()
	dr, err := compression.DecompressStream(content.NewReader(ra))
	if err != nil {
		return fmt.Errorf("decompress: %w", err)
	}
	defer dr.Close()
	return fn(dr)
}

func readJSON(ctx context.Context, cs content.Provider, desc ocispec.Descriptor, v any) error {
	b, err := content.ReadBlob(ctx, cs, desc)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// extract makes sure the module of key is in dir, named after its
// content, and returns its path. A file removed since (by the removal of
// another image with the same module) is written again.
func (s *Store) extract(ctx context.Context, key moduleKey, facts moduleFacts, dir string) (string, error) {
	s.files.Lock()
	defer s.files.Unlock()
	if facts.checksum != "" {
		p := modulePath(dir, facts.checksum)
		if _, err := os.Stat(p); err == nil {
			return p, s.addRef(dir, key.image, facts.checksum)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(dir, ".module-*.tmp")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	err = s.readLayer(ctx, facts.layer, func(r io.Reader) error {
		return copyEntry(r, facts.file, io.MultiWriter(tmp, h))
	})
	if err == nil {
		err = tmp.Chmod(0o644)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", err
	}
	sum := hex.EncodeToString(h.Sum(nil))
	p := modulePath(dir, sum)
	if err := os.Rename(tmp.Name(), p); err != nil {
		return "", err
	}
	facts.checksum = sum
	s.mu.Lock()
	s.modules[key] = facts
	s.mu.Unlock()
	return p, s.addRef(dir, key.image, sum)
}

func modulePath(dir, sum string) string { return filepath.Join(dir, sum+".wasm") }
