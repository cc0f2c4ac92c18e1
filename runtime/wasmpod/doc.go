// Package wasmpod is the node agent's side of wasm containers: it runs the
// wasm containers of each pod in that pod's sandbox process and presents
// them to the pod worker as a container runtime, beside runtime/oci.
//
// A pod's first wasm container starts the pod's sandbox process
// (wasmkube-sandbox, served by sandbox/wasmhost/server) from a thread that
// has entered the pod's network namespace, straight into a leaf cgroup of
// the pod's cgroup, in a session of its own. Its guests therefore share the
// pod's IP and localhost with the OCI containers beside them, count
// against the pod's CPU, and outlive the agent: the process is not the
// agent's child in any way that a kill -9 of the agent reaches. A restarted
// agent finds each process again by its socket, DIR/wasm/sandboxes/<pod
// uid>.sock, and lists its containers with the labels they were created
// with, which is all the pod worker needs to adopt them.
//
// A module is compiled once per image digest by a short-lived
// `wasmkube-sandbox compile` before the first sandbox needs it, so twenty
// replicas starting at once do not compile twenty times; the sandboxes load
// the code from the shared cache directory.
//
// Loading is still most of a sandbox's start (150 ms for a Go net/http
// module: wazero decodes and validates the module before it looks in its
// cache), so the runtime keeps warm sandboxes: for each of the images whose
// pods started last (Config.WarmSandboxes of them), one sandbox process
// started ahead of need, at the lowest priority, with the image's module
// loaded. The image's next pod takes it: the process moves every one of
// its threads into the pod's network namespace (setns on all threads, so
// that /proc/<pid>/ns/net, the listeners and the guests' sockets are the
// pod's), returns to normal priority, and moves into the pod's cgroup; its
// socket and log are renamed after the pod. A replacement then loads in the
// background. A warm sandbox that cannot be taken is killed and the pod
// starts its own; a burst of pods outruns the pool and starts as without
// it. Warm sandboxes end with the agent; those a killed agent left are
// shut down by the next one.
//
// Mux puts this runtime and runtime/oci behind the pod worker's one
// Runtime: a container is wasm when the pod's runtimeClassName is "wasm"
// or its image's entrypoint is a wasm module, and every later call follows
// the container id to the runtime that made it.
package wasmpod
