package testimages

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/wasmkube/wasmkube/runtime/images/wasmpack"
)

// BuildWasmModule compiles the Go main package in pkgDir for
// GOOS=wasip1 GOARCH=wasm and returns the module's path.
func BuildWasmModule(t testing.TB, pkgDir string) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	out := filepath.Join(t.TempDir(), filepath.Base(pkgDir)+".wasm")
	cmd := exec.Command(goBin, "build", "-trimpath", "-ldflags=-s -w", "-o", out, ".")
	cmd.Dir = pkgDir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=wasip1", "GOARCH=wasm")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %s for wasip1/wasm: %v\n%s", pkgDir, err, b)
	}
	return out
}

// BuildWasmOCIArchive compiles the Go main package in pkgDir as a wasip1
// module and packs it as `wasmkube image pack --wasm` does: an OCI layout
// in a tar, in a temporary directory of t, whose image named ref has the
// module at /app.wasm as its entrypoint.
func BuildWasmOCIArchive(t testing.TB, ref, pkgDir string) (archivePath string) {
	t.Helper()
	archivePath = filepath.Join(t.TempDir(), filepath.Base(pkgDir)+"-wasm-oci.tar")
	if err := wasmpack.PackFile(BuildWasmModule(t, pkgDir), ref, archivePath); err != nil {
		t.Fatalf("pack %s: %v", pkgDir, err)
	}
	return archivePath
}
