package testimages

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/wasmkube/wasmkube/runtime/images/wasmpack"
)

// HelloBinary is where the hello server sits inside the image, and its
// entrypoint.
const HelloBinary = "/hello"

// HelloPort is the port the hello server listens on unless HELLO_ADDR says
// otherwise.
const HelloPort = 8080

// Annotation keys for OCI layouts. containerd names an imported image after
// the first and falls back to the second, which the OCI spec allows to be a
// bare tag.
const (
	annotationContainerdName = "io.containerd.image.name"
	annotationOCIRefName     = "org.opencontainers.image.ref.name"
)

// BuildHelloImage builds the hello server into an image named ref and writes
// it as a docker-format archive (the `docker save` layout) in a temporary
// directory of t. It returns the archive's path.
func BuildHelloImage(t testing.TB, ref string) (archivePath string) {
	t.Helper()
	tag, err := name.NewTag(ref)
	if err != nil {
		t.Fatalf("image reference %q: %v", ref, err)
	}
	img := HelloImage(t)
	archivePath = filepath.Join(t.TempDir(), "hello-docker.tar")
	if err := tarball.WriteToFile(archivePath, tag, img); err != nil {
		t.Fatalf("write docker archive: %v", err)
	}
	return archivePath
}

// BuildHelloOCIArchive is BuildHelloImage writing an OCI image layout in a
// tar instead, with the full reference in the index annotations.
func BuildHelloOCIArchive(t testing.TB, ref string) (archivePath string) {
	t.Helper()
	return writeOCIArchive(t, HelloImage(t), ref, "hello-oci.tar")
}

// writeOCIArchive writes img as an OCI image layout in a tar named file in a
// temporary directory of t, annotated with ref so that an import names the
// image after it.
func writeOCIArchive(t testing.TB, img v1.Image, ref, file string) (archivePath string) {
	t.Helper()
	archivePath = filepath.Join(t.TempDir(), file)
	if err := wasmpack.WriteOCIArchive(archivePath, img, ref); err != nil {
		t.Fatalf("write OCI archive of %s: %v", ref, err)
	}
	return archivePath
}

// HelloImage returns the hello server as an in-memory image for the
// machine's architecture, with OCI media types.
func HelloImage(t testing.TB) v1.Image {
	t.Helper()
	bin := BuildHelloBinary(t)
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	layerTar, err := wasmpack.SingleFileTar(HelloBinary[1:], data, 0o755)
	if err != nil {
		t.Fatalf("layer tar: %v", err)
	}
	return singleLayerImage(t, layerTar, func(c *v1.Config) {
		c.Entrypoint = []string{HelloBinary}
		c.Env = []string{"PATH=/"}
		c.ExposedPorts = map[string]struct{}{"8080/tcp": {}}
	})
}

// singleLayerImage makes a linux image for the machine's architecture, with
// OCI media types, of one uncompressed layer tar and the config that
// configure sets.
func singleLayerImage(t testing.TB, layerTar []byte, configure func(*v1.Config)) v1.Image {
	t.Helper()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		t.Fatalf("layer: %v", err)
	}
	base := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	base = mutate.ConfigMediaType(base, types.OCIConfigJSON)
	img, err := mutate.AppendLayers(base, layer)
	if err != nil {
		t.Fatalf("append layer: %v", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS = "linux"
	cf.Architecture = runtime.GOARCH
	configure(&cf.Config)
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatalf("image config: %v", err)
	}
	return img
}

// BuildHelloBinary compiles testdata/hello as a static binary and returns
// its path. The go build cache makes every call after the first cheap.
func BuildHelloBinary(t testing.TB) string {
	t.Helper()
	return buildStatic(t, "hello")
}

// buildStatic compiles the command in testdata/<name> as a static binary
// and returns its path.
func buildStatic(t testing.TB, name string) string {
	t.Helper()
	_, self, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the testimages source directory")
	}
	src := filepath.Join(filepath.Dir(self), "testdata", name)
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	out := filepath.Join(t.TempDir(), name)
	cmd := exec.Command(goBin, "build", "-trimpath", "-ldflags=-s -w", "-o", out, ".")
	cmd.Dir = src
	// CGO off makes the binary static, so the image needs no libc.
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", name, err, b)
	}
	return out
}
