// Package deployment is the Deployment controller: it rolls a Deployment's
// pod template out through ReplicaSets, one per template, and reports the
// rollout in the Deployment's status.
//
// It follows upstream's controller step for step, because kubectl (rollout
// status, history, undo, restart, pause, resume) and users read its
// observable behaviour: ReplicaSet names "<deployment>-<pod-template-hash>"
// with upstream's hash, the pod-template-hash label in the ReplicaSet's
// labels, selector and template, the revision annotations (a rollback by
// kubectl copies an old ReplicaSet's template back, and that ReplicaSet
// becomes the new one with the next revision), the desired-replicas and
// max-replicas annotations that proportional scaling reads, the Available
// and Progressing conditions with upstream's reasons and messages, and the
// ScalingReplicaSet events.
//
// Each sync does one step (scale the new ReplicaSet up, or old ones down)
// and writes the status; the resulting ReplicaSet and pod events bring the
// next step. The controller never touches pods: the ReplicaSet controller
// does, and the garbage collector removes ReplicaSets when the Deployment
// goes.
//
// One deviation from upstream's code, not its behaviour: the revision
// annotation on the Deployment is written with a metadata update rather
// than through the status update, because this API server's status update
// keeps the stored annotations.
package deployment
