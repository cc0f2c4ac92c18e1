// Package cgroups gives each pod sandbox a cgroup, <parent>/pod<uid> (for
// example /wasmkube/pods/pod<uid>), where the pod-level limits are set and
// under which runc places the pod's OCI containers (the path is their
// CgroupParent) and into which the wasm host process can be moved.
//
// The pod cgroup is made in the same hierarchies runc uses, so that a pod
// limit applies to its containers: on a host with cgroup v1 mounts (v1
// only, or hybrid with cgroup2 beside them) runc places a container in every
// v1 hierarchy, named ones such as name=systemd included, and additionally
// in the cgroup2 one; on a pure cgroup2 host, in the cgroup2 hierarchy only.
// The hierarchies are discovered from /proc/self/mountinfo rather than
// assumed at /sys/fs/cgroup: edge nodes come with all three layouts, and in
// a hybrid one /sys/fs/cgroup is a tmpfs of v1 hierarchies with cgroup2
// elsewhere (for example /sys/fs/cgroup/unified).
//
// A controller is bound to exactly one hierarchy. A limit is written where
// its controller is: the v1 hierarchy it is bound to (v1 file names), or
// else cgroup2 (v2 file names), where it must first be enabled in
// cgroup.subtree_control of every ancestor of the pod cgroups; NewManager
// does that down to the parent. In a hybrid layout memory, cpu and pids are
// normally bound to v1 and cgroup2 offers almost nothing, so limits land in
// v1 while cgroup2 still groups the pod's processes (for eBPF cgroup hooks).
// A setter whose controller is found nowhere returns an error matching
// ErrControllerUnavailable that says why, so the agent can report that the
// limit is not enforced instead of failing the pod or pretending it holds.
//
// Membership (Add) and kill-and-remove span every hierarchy: a process left
// in any of them, or a container cgroup left inside the pod's, would keep
// the pod cgroup from being removed.
package cgroups
