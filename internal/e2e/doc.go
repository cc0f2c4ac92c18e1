// Package e2e drives the built wasmkube binary the way a person does: it
// starts `wasmkube server` or the all-in-one `wasmkube up` as real processes
// and runs upstream kubectl against them through `wasmkube kubectl`.
//
// The tests here are acceptance scripts: they compare kubectl's output with
// what upstream Kubernetes prints, so a divergence in the wire format, the
// server-side tables or the error messages shows up as a failing line.
//
// The node tests (TestNode) share one `wasmkube up` started by StartNode,
// with its own containerd, pod CIDR and bridge, and the test images
// imported; each runs in a namespace of its own, in parallel with the
// others. They run as root, reach pods over the node's bridge, and when the
// node stops they fail for anything its pods left on the machine.
//
// They need the binary: `make test` passes it as WASMKUBE_BIN. Without it the
// tests fail rather than skip, because a skipped acceptance suite looks green.
package e2e
