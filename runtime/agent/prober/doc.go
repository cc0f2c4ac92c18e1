// Package prober is the node agent's prober and lifecycle hook runner: the
// kubelet's liveness, readiness and startup probes, and postStart and
// preStop handlers.
//
// A Manager keeps one worker goroutine per container and probe kind. The
// pod worker tells it which runtime container (attempt) currently runs for
// each of a pod's containers; each worker probes that attempt every
// periodSeconds after initialDelaySeconds, applies successThreshold and
// failureThreshold, and caches the result by runtime container id, so a
// restarted container starts from the kind's initial result again.
// Liveness and readiness wait for the startup probe to succeed. A changed
// result calls back into the pod worker, which re-reads the results when it
// builds the pod status (ready, started) and kills containers whose
// liveness or startup probe failed.
//
// The checks are upstream's: exec in the container (exit 0 is success),
// httpGet from the node (200-399, redirects followed only to the same
// host, User-Agent kube-probe/<major>.<minor>), tcpSocket (a connection),
// and grpc (grpc.health.v1.Health/Check).
package prober
