// Package containerd runs a private containerd for the node agent when no
// --containerd-address is given.
//
// An edge node often has no system containerd, or has one that belongs to
// something else (Docker, k3s). Running our own child keeps the agent
// self-contained: its images, snapshots and container state live under the
// agent's data directory, and nothing it does can disturb another user of the
// machine's containerd.
//
// The child is configured for a small node: the CRI plugin (which would start
// a second, unused kubelet-facing API and its own image service) and the
// snapshotters that need special filesystems are disabled, the debug and
// metrics endpoints are off, and logs go to a file at warning level, so the
// process stays small and quiet.
//
// The supervisor restarts containerd with back-off when it dies. Containers
// survive such a restart: they belong to their shims, which a restarted
// containerd re-adopts, and clients reconnect by themselves because gRPC
// redials the same socket.
//
// # Socket paths
//
// containerd listens on unix sockets under Config.Dir (containerd.sock and
// containerd.sock.ttrpc). A unix socket path must fit in sun_path, 108 bytes
// on Linux including the terminating NUL, so Dir must be short: Start rejects
// a Dir whose socket paths would not fit, rather than letting containerd fail
// later with an obscure bind error.
package containerd
