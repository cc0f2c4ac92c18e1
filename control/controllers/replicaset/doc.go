// Package replicaset is the ReplicaSet controller: it keeps the number of
// active pods that a ReplicaSet controls at spec.replicas and reports them in
// its status.
//
// It follows upstream's controller closely, because kubectl, Deployments and
// users rely on its observable behaviour:
//
//   - Pods are created from the template with generateName "<rs>-", so their
//     names are "<rs>-<5 random chars>", and carry an ownerReference with
//     controller=true and blockOwnerDeletion=true, so that foreground
//     deletion of the ReplicaSet waits for them.
//   - Ownership follows the selector (see Claim): an orphan pod that matches
//     is adopted, an owned pod that stops matching is released. The same
//     claim logic serves the Deployment controller for ReplicaSets, and
//     through ClaimPods the DaemonSet, Job and StatefulSet controllers for
//     their pods.
//   - Expectations remember how many creations and deletions are in flight,
//     so that a sync that runs before the informer has seen the pods it just
//     created does not create them again.
//   - Creation goes in slow-start batches (1, 2, 4, ...), so a template the
//     API server rejects costs one failed request, not hundreds.
//   - Scale-down deletes the least valuable pods first, in upstream's order:
//     unscheduled, pending, not ready, doubled up on a node, recently ready,
//     restarted more, newer.
//   - availableReplicas counts pods Ready for at least minReadySeconds; the
//     ReplicaSet is requeued when the next pod will cross that line.
package replicaset
