// Package network builds a pod sandbox's network: a network namespace pinned
// on disk, a veth pair whose host end is a port of the node bridge, the pod's
// address on eth0 and a default route through the bridge's gateway address.
//
// The namespace is pinned by bind-mounting its nsfs file at
// <NetnsDir>/<podID> rather than being held by a long-running pause process.
// A pinned namespace outlives the agent, so an agent restart neither kills
// running containers nor needs a process to re-adopt; and a path is exactly
// what both kinds of container need: OCI containers join it through the
// runtime spec (linux.namespaces[type=network].path = Path), and the wasm
// host enters it with Netns.Do (or setns on its own thread) before creating
// its sockets. The pin lives under the agent's own directory instead of
// /var/run/netns so that `ip netns` users and other CNI tools never see, or
// delete, wasmkube's namespaces, and so that tests can use a temp dir.
//
// Every name is derived from the pod id (the host veth is "wkv" plus a hash
// of it), so Teardown needs no state beyond the id and works on sandboxes
// that were only half created by a crash. Configuration inside the namespace
// goes through a netlink handle opened in it, so no goroutine has to switch
// namespaces except where a socket must be created inside (Netns.Do).
//
// Routing between pods on one node is plain L2 on the bridge; nothing here
// installs iptables or nftables rules (service routing is eBPF's job).
package network
