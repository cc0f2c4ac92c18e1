// Package server is the sandbox process's side of package wasmhost: it
// serves the agent's requests on the process's Unix socket and runs the
// pod's wasm containers with runtime/wasm, each instance in a goroutine of
// this process.
//
// A container's ports are listeners the process opens in its own network
// namespace (the pod's) when the container starts, handed to the guest as
// fds 3, 4, ... through package wasisock. Only TCP ports are offered for
// now: a UDP port is refused at Create. Stop closes the listeners first,
// so a guest serving them sees its accept fail and usually ends by itself,
// then kills the guest once the grace period is over.
//
// Compiled code lives in the node's compilation cache directory, one
// subdirectory per image digest, so every sandbox of an image loads it
// rather than compiling; Compile fills it once for a new image.
//
// Nothing a guest or a request does ends the process: panics in handlers
// and in instance goroutines are recovered and reported.
package server
