package testimages

import (
	"os"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/wasmkube/wasmkube/runtime/images/wasmpack"
)

// GRPCHealthBinary is where the gRPC health server sits inside its image,
// and its entrypoint.
const GRPCHealthBinary = "/grpchealth"

// GRPCHealthPort is the port the gRPC health server listens on unless
// GRPC_ADDR says otherwise.
const GRPCHealthPort = 9090

// BuildGRPCHealthOCIArchive builds testdata/grpchealth, a static server of
// the standard grpc.health.v1 service, into an image named ref, written as
// an OCI layout in a tar in a temporary directory of t.
func BuildGRPCHealthOCIArchive(t testing.TB, ref string) (archivePath string) {
	t.Helper()
	return writeOCIArchive(t, GRPCHealthImage(t), ref, "grpchealth-oci.tar")
}

// GRPCHealthImage is the image BuildGRPCHealthOCIArchive writes, in memory.
func GRPCHealthImage(t testing.TB) v1.Image {
	t.Helper()
	data, err := os.ReadFile(buildStatic(t, "grpchealth"))
	if err != nil {
		t.Fatal(err)
	}
	layerTar, err := wasmpack.SingleFileTar(GRPCHealthBinary[1:], data, 0o755)
	if err != nil {
		t.Fatalf("layer tar: %v", err)
	}
	return singleLayerImage(t, layerTar, func(c *v1.Config) {
		c.Entrypoint = []string{GRPCHealthBinary}
		c.Env = []string{"PATH=/"}
	})
}
