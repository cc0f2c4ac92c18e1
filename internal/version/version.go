// Package version holds the build's version strings, stamped by the Makefile.
package version

// Set through -ldflags -X by the Makefile.
var (
	// Version is wasmkube's own version (git describe).
	Version = "dev"
	// Kubernetes is the Kubernetes API version served, v1.<minor of k8s.io/api>.<patch>.
	Kubernetes = "v1.37.2"
)
