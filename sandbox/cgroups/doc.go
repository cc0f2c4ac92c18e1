// Package cgroups gives each pod sandbox a cgroup on the cgroup2 hierarchy,
// <cgroup2>/<parent>/pod<uid>, where the pod's limits are set and into which
// both OCI containers (through their spec's cgroupsPath) and the wasm host
// process are placed.
//
// The cgroup2 mount is discovered from /proc/self/mountinfo instead of being
// assumed at /sys/fs/cgroup: edge nodes run hybrid layouts where
// /sys/fs/cgroup is a tmpfs of v1 hierarchies and cgroup2 sits elsewhere
// (for example /sys/fs/cgroup/unified).
//
// In a hybrid layout a controller lives on exactly one hierarchy, and
// memory, cpu and pids are usually bound to v1; cgroup2 then offers none of
// them. The package does not fall back to v1 silently: a setter whose
// controller is missing returns an error matching ErrControllerUnavailable
// that says why (not attached to cgroup2 at all, or not enabled in the
// parent's cgroup.subtree_control), so the agent can report the node's
// capability instead of pretending a limit is enforced. Membership (Add) and
// kill-and-remove work without any controller, so grouping, accounting of
// leaked processes and eBPF cgroup hooks work on every layout.
//
// Controllers are enabled top-down in cgroup.subtree_control of every
// ancestor of the pod cgroups, which is what cgroup2 requires before a child
// can use them; the pod cgroups themselves stay leaves that hold processes.
package cgroups
