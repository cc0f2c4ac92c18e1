// Package testimages builds OCI images for tests, because no registry is
// reachable from the machines the tests run on: every image a test needs is
// made from source on the spot.
//
// The images are as small as an image can usefully be — one layer holding one
// static Go binary — so that building and importing them costs a test well
// under a second, and so that they run on any kernel with no libc or shell
// inside. They are written as archives (the format `docker save` produces,
// or an OCI image layout in a tar), which is what users hand to
// `wasmkube image import` as well.
package testimages
