// Package nodelifecycle watches node heartbeats and acts when a node goes
// silent, as upstream's node lifecycle and taint-eviction controllers do.
//
// Health: a node is alive while its Lease in kube-node-lease (or its Ready
// condition's heartbeat) keeps changing. The controller records when it
// last saw a change, on its own clock, rather than trusting the renew time
// the node wrote: edge nodes' clocks drift, and a node with a fast clock
// must not look healthy forever. After the grace period without a change
// the node's Ready, MemoryPressure, DiskPressure and PIDPressure conditions
// become Unknown (NodeStatusUnknown, "Kubelet stopped posting node
// status."). The next heartbeat restarts the count; the kubelet itself sets
// Ready back to True.
//
// Taints follow the conditions: Ready=Unknown gives the NoExecute and
// NoSchedule node.kubernetes.io/unreachable taints, Ready=False the
// not-ready ones, pressure conditions and spec.unschedulable their
// NoSchedule taints; they go away when the conditions clear. Pods on a node
// that is not Ready are marked Ready=False so that endpoints stop routing
// to them even though their kubelet cannot say so.
//
// Eviction: a pod on a node with NoExecute taints is deleted once the
// shortest tolerationSeconds of the tolerations it uses has passed since
// the controller first saw it under those taints, at once when some taint
// is not tolerated, never when its tolerations have no limit. Timers are
// workqueue delays (EnqueueAfter) against the injected clock, so there is
// no timer goroutine per pod, and tests can use second-long timeouts.
// A pending eviction that the node's recovery cancels is reported with an
// event, as upstream does.
//
// Not done (upstream has them): per-zone eviction rate limiting and the
// "full disruption" freeze that stops evictions when a whole zone is down.
package nodelifecycle
