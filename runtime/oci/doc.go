// Package oci runs the OCI containers of a pod through containerd, each one
// joined to the network namespace of its pod sandbox.
//
// Containers live in containerd's "wasmkube" namespace next to the node's
// images (see runtime/images), each with a writable snapshot of its image
// keyed by the container id. What later calls need beyond the id (the log
// path, the start time, limits that could not be applied) is kept in the
// container's labels rather than in memory, so that an agent that restarts
// can list the containers (List) and report on them as before.
//
// # Network namespace
//
// The sandbox pins the pod's network namespace as a file (sandbox/network).
// A container joins it through its runtime spec: the network entry of
// linux.namespaces carries that path, and runc calls setns on it before the
// process starts. No container holds the namespace, so containers of a pod
// come and go while the pod's address stays, and wasm modules of the same
// pod can share it. An empty path keeps the host's network (hostNetwork
// pods), with the host's /etc/hosts and resolv.conf.
//
// # Logs
//
// The task's stdout and stderr are FIFOs that this process reads through
// containerd's cio package, with writers that cut the streams into lines
// and write each as a record of the CRI log format
//
//	<RFC 3339 time with nanoseconds> stdout|stderr F|P <line>
//
// the format the kubelet's log readers and `kubectl logs` tooling expect
// (P marks a part of a line longer than 16 KiB). cio.LogFile would be
// simpler, but it has the shim write the raw bytes, with no timestamp and
// no stream name, so the two streams could not be told apart again.
// Reading the FIFOs ourselves has a cost: while no Runtime reads them (the
// agent is down) output waits in the pipe, and a chatty container blocks
// once the 64 KiB pipe buffer fills. The FIFOs outlive the agent (Close
// leaves them), and a new Runtime resumes the log with Attach, losing
// nothing that fitted in the pipe meanwhile.
//
// # Exit status
//
// Status reads the containerd task: running, or exited with its code and
// time. An exited task is kept until Remove or the next Start, so the code
// stays readable. A process killed by signal n exits with 128+n; a Go
// program without a handler that gets SIGTERM as PID 1 exits with 2,
// because the kernel shields PID 1 from the signal Go re-raises. OOMKilled
// comes from the memory cgroup's oom_kill counter, which survives the
// processes until the task is deleted.
//
// Resource limits go into the spec for runc to apply to the cgroup version
// runc uses (v1 on a hybrid machine). A limit whose controller is missing is
// left out and reported in State.Warnings instead of failing the container.
package oci
