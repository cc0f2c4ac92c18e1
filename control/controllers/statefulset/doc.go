// Package statefulset is the StatefulSet controller: it gives each replica
// a stable identity — pod name "<set>-<ordinal>", hostname and subdomain
// for DNS, and its own PersistentVolumeClaims — and creates, deletes and
// updates the pods in the order the set's policy asks for.
//
// It follows upstream's controller where users can observe it:
//
//   - OrderedReady creates ordinals in increasing order, each only once the
//     previous one is Running and Ready, and scales down from the highest
//     ordinal, one pod at a time, waiting for each to be gone. Parallel
//     creates and deletes without waiting.
//   - volumeClaimTemplates become claims named "<template>-<set>-<ordinal>",
//     created before the pod that mounts them and never deleted by the
//     controller (the Retain retention policy; Delete is not implemented).
//   - Template versions are ControllerRevisions "<set>-<hash>"; a pod's
//     controller-revision-hash label is the name of its revision, and
//     status.currentRevision/updateRevision name the old and new versions.
//   - RollingUpdate deletes pods whose revision is not the update revision,
//     from the highest ordinal down to the partition, one at a time and only
//     while every replica is healthy; the next sync recreates the pod at
//     the update revision. Pods below the partition are recreated at the
//     current revision. OnDelete leaves replacement to the user.
//
// Pod names are fixed, so creations need no expectations: a stale cache
// only makes a creation fail with AlreadyExists, which the next sync sorts
// out.
package statefulset
