// Package scheduler is wasmkube's kube-scheduler: it assigns every pending
// pod whose spec.schedulerName is "default-scheduler" to a node, by filtering
// the nodes the pod cannot run on and scoring the rest, and records the
// decision through the pods/binding subresource. Like every other control
// plane component it talks to the API server only through client-go.
//
// # Shape
//
// Shared informers (pods, nodes, RuntimeClasses) feed two things: pending pods
// become keys in a framework.Controller queue, the same sample-controller
// shape every controller has; bound pods and nodes update an in-memory
// snapshot cache. One worker runs one scheduling cycle per key: filters in
// upstream's plugin order (NodeUnschedulable, readiness, TaintToleration,
// NodeAffinity with RuntimeClass scheduling and the wasm runtime,
// NodePorts, NodeResourcesFit, VolumeBinding, InterPodAffinity), then weighted scores
// (taint toleration 3, node affinity 2, inter-pod affinity 2, owner spreading
// 2, least allocated 1, balanced allocation 1), then the best node, ties
// broken at random.
//
// # Why a snapshot cache
//
// A cycle must know what every node already has committed: requested cpu,
// memory and ephemeral storage, host ports, pod count, pods per owner. Listing
// pods per node in each cycle would make a cycle O(pods) and allocate on every
// attempt; the cache keeps those sums per node, updated incrementally from
// informer events, so a cycle is O(nodes) and allocation-free in the common
// path. It also holds pods this scheduler has decided on but whose binding the
// informer has not yet shown ("assumed" pods, as upstream calls them):
// without them two pods scheduled back to back would both see the same free
// cpu and overcommit the node.
//
// # Why asynchronous binding
//
// A binding is an HTTPS round trip and an etcd write, milliseconds, while a
// cycle over a hundred nodes takes tens of microseconds. Binding inline would
// cap throughput at one pod per round trip; instead the cycle assumes the pod
// in the cache and hands the binding to a small pool of goroutines, so the
// next cycle starts at once and bindings overlap. A failed binding forgets the
// assumed pod and requeues it. Status patches for unschedulable pods go
// through the same pool.
//
// # Unschedulable pods
//
// A pod that fits nowhere gets upstream's FailedScheduling Warning event and
// the PodScheduled=False condition (reason Unschedulable) with upstream's
// message, for example
//
//	0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.
//
// The scheduler never preempts; the "preemption:" part reports what
// upstream's preemption would find on a cluster without lower-priority
// victims. The pod then waits in an unschedulable set until the cluster
// changes in a way that may help (a node added or changed, a pod deleted, a
// RuntimeClass changed) or until the periodic flush (30 s by default).
//
// # Node readiness
//
// Upstream relies on the node lifecycle controller tainting nodes that are not
// Ready. The scheduler applies the same rule itself: a node whose Ready
// condition is not True (or missing) is treated as carrying
// node.kubernetes.io/not-ready:NoSchedule (node.kubernetes.io/unreachable when
// Unknown), so pods that tolerate the taint, such as DaemonSet pods, still fit.
//
// # Wasm pods
//
// A pod needs the wasm runtime when spec.runtimeClassName is "wasm" or when
// it carries the annotation wasmkube.io/runtime: wasm. Such a pod only goes to
// nodes labelled wasmkube.io/wasm=true. EnsureWasmRuntimeClass creates the
// RuntimeClass "wasm" (handler "wasm", scheduling.nodeSelector
// wasmkube.io/wasm=true) at server start. RuntimeClass scheduling applies to
// every runtime class as upstream: its nodeSelector joins the pod's, its
// tolerations join the pod's.
//
// # Volumes
//
// VolumeBinding reads the pod's PersistentVolumeClaims (informers on
// claims, volumes and StorageClasses): a missing or deleted claim, or an
// unbound claim of an Immediate class, makes the pod unschedulable with
// upstream's message; a bound claim's volume must allow the node (its
// node affinity); an unbound WaitForFirstConsumer claim needs a free
// matching volume on the node or a class whose provisioner may create one
// there. Before the Binding, the bind worker reserves that free volume for
// the claim or annotates the claim with volume.kubernetes.io/selected-node,
// then waits (up to upstream's 600 s) until the PersistentVolume
// controller has bound every claim: the pod is Pending until its storage
// exists, then bound.
//
// # Leader election
//
// With Options.LeaderElection several servers can run a scheduler each; they
// elect a leader through the Lease kube-system/kube-scheduler and only the
// leader schedules. The others keep their informers warm so a failover starts
// scheduling immediately.
package scheduler
