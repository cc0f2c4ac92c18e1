// Package wasmhost is the contract between the node agent and a pod's
// sandbox process, the process that runs the pod's WebAssembly containers.
//
// Each pod with at least one wasm container gets one sandbox process
// (cmd/wasmkube-sandbox, serving with wasmhost/server). The agent starts it
// inside the pod's network namespace and cgroup, in its own session, so the
// process and the guests in it survive the agent: a restarted agent dials
// the process's socket again and adopts its containers, as it adopts OCI
// containers through containerd. A trap, a panic or memory exhaustion of a
// guest stays inside that pod's process.
//
// The agent talks to the process over a Unix socket with JSON over HTTP/1.1
// (this package's Client): create, start, state, wait, stop, remove, list,
// and exec, whose standard streams travel on the hijacked connection as
// frames. The process itself writes each container's stdout and stderr to
// the container's log file in the CRI format, so logs keep flowing while the
// agent is down.
package wasmhost
