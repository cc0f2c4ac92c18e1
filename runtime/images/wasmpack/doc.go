// Package wasmpack packages a WebAssembly (WASI preview 1) module as an
// ordinary OCI image, so that wasm workloads travel, import, pull, list and
// get garbage-collected through the same containerd image store as
// containers. `wasmkube image pack --wasm` and the tests' image builders
// share it.
//
// The image holds one layer with the module at /app.wasm (mode 0755) and a
// config whose entrypoint is that file. Its platform is wasip1/wasm, the
// names the Bytecode Alliance's OCI wasm convention and Go's GOOS/GOARCH
// use for WASI preview 1 modules. The archive's index does not carry the
// platform: the image's target is the manifest itself, which containerd
// imports, unpacks and sizes on any node whatever its config says, while a
// platform in the index would make a node's platform filter drop it.
package wasmpack
