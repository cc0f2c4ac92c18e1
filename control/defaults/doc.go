// Package defaults fills in the values upstream kube-apiserver sets on
// objects before validation, so stored objects (and `kubectl get -o yaml`)
// look as they would on a real cluster.
//
// The rules come from upstream's versioned defaulting functions
// (pkg/apis/core/v1/defaults.go, pkg/apis/apps/v1/defaults.go,
// pkg/apis/batch/v1/defaults.go, and those of autoscaling/v2, networking,
// discovery and storage) plus the few values upstream's create strategies
// and default admission plugins add to every pod (serviceAccountName
// "default", priority and preemptionPolicy, the not-ready/unreachable
// tolerations) and the Job selector its strategy generates. Upstream's
// generated defaulters apply the pod rules to every embedded pod template;
// so does this package.
package defaults
