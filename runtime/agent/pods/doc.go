// Package pods is the agent's pod worker: the kubelet's sync loop for the
// pods bound to this node.
//
// It has the shape of every controller in this repository: an informer on
// the node's pods, a rate-limited workqueue of pod keys, and one idempotent
// sync(key). Each sync compares the pod's spec with what the runtime has
// and takes the next steps of upstream's order: the sandbox (network
// namespace, IP, cgroup, per-pod files), the volumes, the init containers
// one by one (native sidecars keep running), then the app containers,
// restarting exited ones per restartPolicy with upstream's back-off, and
// killing those whose liveness or startup probe failed (runtime/agent/prober
// runs the probes and the postStart and preStop hooks). It then writes the
// pod status it observed, with readiness as the probes report it.
//
// Deletion is the graceful protocol: once the API server sets the pod's
// deletionTimestamp, a terminator stops the containers (preStop hook,
// SIGTERM, then SIGKILL after the grace period), removes the sandbox and
// confirms with a delete at grace 0. Termination runs beside the workqueue rather than in
// it, so that a pod waiting out a 30 s grace period holds no worker.
//
// Which pod a runtime container belongs to is kept in the container's
// labels, not in memory: an agent that restarts finds its containers again
// and adopts them, and removes those whose pod is gone.
//
// Each pod's object is checkpointed under DIR/checkpoints/<uid>.json. An
// agent that starts while the API server cannot be listed runs its pods
// from there (offline.go): running containers are kept, crashed ones
// restart under their restartPolicy, and nothing is removed for being
// absent until the informer has synced. Old attempts beyond the current
// and the previous one are garbage collected with their logs (gc.go).
package pods
