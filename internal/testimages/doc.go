// Package testimages builds OCI images for tests, because no registry is
// reachable from the machines the tests run on: every image a test needs is
// made on the spot.
//
// The images are as small as an image can usefully be — one layer — so that
// building and importing them costs a test well under a second:
//
//   - hello: one static Go binary, an HTTP server on :8080 that can also be
//     told to hold a given amount of memory (HelloAllocEnv), to exceed a
//     memory limit;
//   - busybox: Debian's busybox-static with a symlink per applet, /etc/passwd
//     and /etc/group, for shells, httpd, wget and the like.
//
// Neither needs a libc, so they run on any kernel. They are written as
// archives (the format `docker save` produces, or an OCI image layout in a
// tar), which is what users hand to `wasmkube image import` as well.
package testimages
