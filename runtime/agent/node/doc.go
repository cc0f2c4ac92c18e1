// Package node is the node agent's node-status part, in the roles of
// kubelet's node status manager and node lease controller: it registers
// the Node (or adopts an existing one of the same name), keeps a Lease in
// kube-node-lease renewed, reports capacity, addresses, system info and
// the Ready, MemoryPressure, DiskPressure and PIDPressure conditions, and
// lets the pod sandbox wait for the pod CIDR the node IPAM controller
// assigns (WaitPodCIDR).
//
// Why a Lease and a status, as upstream: the status is a large object
// that every Node watcher (scheduler, controllers, kubectl) receives on
// each write, while liveness needs a write every few seconds. The Lease
// is a tiny object renewed every LeaseDuration/4, so three renewals can
// fail before the node lifecycle controller declares the node dead; the
// status is re-evaluated every StatusInterval but only written when it
// changed, or once per StatusReportInterval so that heartbeats still show
// the agent alive to readers that do not look at Leases. Status writes are
// two-way strategic merge patches on nodes/status, so conditions set by
// other components and fields owned by controllers (spec.podCIDR) are
// never overwritten, and no resourceVersion conflict can occur.
//
// Why these thresholds: they are upstream's default hard eviction
// thresholds (memory.available<100Mi, nodefs.available<10%), so a node
// reports pressure exactly when kubelet would start evicting, and the
// scheduler keeps new pods away before that; allocatable withholds the
// same amounts from capacity. Upstream has no default pid threshold; 10%
// of min(pid_max, threads-max) left is the point where fork failures
// become likely on small machines. Memory available is the kernel's
// MemAvailable estimate rather than a cgroup working set: the agent needs
// no cgroup accounting to report it, which suits small edge nodes.
//
// Transition times follow upstream: every write refreshes
// lastHeartbeatTime, and lastTransitionTime moves only when a condition's
// status changes, so it tells how long the node has been in that state.
//
// API errors never end Run: registration, renewals and status writes are
// retried, since a node has to outlive API server restarts. A Node deleted
// under a running agent is registered again.
package node
