// Package sandbox is the pod sandbox: what Kubernetes' pause container
// provides, without a pause process.
//
// A sandbox is assembled from its subpackages by the node agent:
//
//   - ipam claims the pod's address from the node's podCIDR;
//   - network pins a network namespace under the agent's run directory,
//     wires it to the node bridge with a veth pair and configures eth0;
//   - cgroups creates the pod's cgroup on the cgroup2 hierarchy and sets
//     its limits where the node delegates the controllers;
//   - files writes the pod's etc-hosts and resolv.conf.
//
// Everything is addressed by the pod id alone (a pinned namespace path, a
// hashed veth name, a claim file, a cgroup directory), so an agent restart
// re-adopts running sandboxes and cleans up half-created ones without any
// state of its own. OCI containers join the namespace by path through their
// runtime spec; the wasm host enters it (network.Do) before opening sockets.
package sandbox
