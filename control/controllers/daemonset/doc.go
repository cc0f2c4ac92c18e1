// Package daemonset is the DaemonSet controller: it keeps one pod of a
// DaemonSet on every node that the pod may run on, and reports how many
// nodes are covered, ready and up to date in the DaemonSet's status.
//
// It follows upstream's controller where users and kubectl can see the
// difference:
//
//   - Eligibility is upstream's: the template's nodeSelector and required
//     node affinity must match the node, and every NoSchedule/NoExecute
//     taint must be tolerated. Daemon pods get upstream's automatic
//     tolerations (not-ready and unreachable for NoExecute; disk, memory and
//     PID pressure and unschedulable for NoSchedule; network-unavailable for
//     host-network pods), so a node need not be Ready. A pod already on a
//     node whose new NoSchedule taint it does not tolerate keeps running; an
//     untolerated NoExecute taint evicts it.
//   - Pods are not bound by the controller: each is created with a required
//     node affinity to its node (matchFields metadata.name), so the
//     scheduler places it and accounts for its resources, as upstream has
//     done since daemon pods moved to the default scheduler.
//   - Every template version is a ControllerRevision named
//     "<ds>-<hash>", and pods carry the hash in the controller-revision-hash
//     label; that is what kubectl rollout history and undo read.
//   - RollingUpdate replaces old pods by deleting them, never more than
//     maxUnavailable unavailable at once (old pods that are already
//     unavailable go first, for free); the next sync creates the new pod.
//     maxSurge is not implemented: surge pods would need two pods per node.
//   - Expectations (shared with the ReplicaSet controller) keep a sync that
//     runs before the informer has seen its own creations from creating
//     doubles.
package daemonset
