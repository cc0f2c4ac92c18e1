// Package images is the node's image store: OCI images, and wasm modules
// packaged as OCI images, kept in containerd under the namespace "wasmkube".
//
// A namespace of our own keeps the node's images apart from anything else
// that uses the same containerd (a system containerd shared with Docker or
// k3s): listing, garbage collection and removal here never see or touch
// theirs.
//
// Images come in two ways. Import reads archives — `docker save` output and
// OCI image layouts in a tar — because edge nodes are often offline, and
// because the tests, with no registry to reach, build their images locally.
// Pull uses containerd's own docker resolver, the path for nodes that have a
// registry. Both unpack the image for the node's snapshotter right away, so
// that starting a container does not pay for it: overlayfs where the kernel
// and the filesystem support it, the native (copying) snapshotter where they
// do not, as containerd reports through its introspection API.
//
// A container is WebAssembly when the file its argv[0] names in the image
// starts with \0asm (wasmpack builds such images: one layer with
// /app.wasm as the entrypoint). Store.WasmModule decides it from the layers
// in containerd's content store, without a snapshot or a mount, following
// the layer format's whiteouts and the image's symlinks, and extracts the
// module once to a file named after its content. The decision is kept per
// image digest and command, so an ordinary image's layers are read once.
// The collector's OnRemove hook lets the node drop those files
// (RemoveWasmModules) with the image.
package images
