// Package validation checks objects of the k8s.io/api versioned types the way
// upstream kube-apiserver does on create and update, so that clients such as
// kubectl print the same messages ("spec.containers[0].image: Required
// value", "field is immutable", ...).
//
// Upstream validates its internal types (k8s.io/kubernetes/pkg/apis/*/validation),
// which cannot be imported. The rules, field paths and messages here are
// re-implemented on the versioned types from upstream's core, apps, batch,
// discovery, coordination, autoscaling, node, networking, events and storage
// validation packages, on top of the apimachinery helpers
// (pkg/api/validation, pkg/apis/meta/v1/validation, pkg/util/validation).
//
// Validation expects defaulted objects (see control/defaults): like upstream,
// fields that defaulting always fills (restartPolicy, dnsPolicy,
// terminationMessagePolicy, ...) are reported as Required when missing.
// Feature-gated behaviour follows the gates' defaults of the matching
// Kubernetes release.
package validation
