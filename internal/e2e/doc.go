// Package e2e drives the built wasmkube binary the way a person does: it
// starts `wasmkube server` (and, later, the node agent) as real processes and
// runs upstream kubectl against them through `wasmkube kubectl`.
//
// The tests here are acceptance scripts: they compare kubectl's output with
// what upstream Kubernetes prints, so a divergence in the wire format, the
// server-side tables or the error messages shows up as a failing line.
//
// They need the binary: `make test` passes it as WASMKUBE_BIN. Without it the
// tests fail rather than skip, because a skipped acceptance suite looks green.
package e2e
