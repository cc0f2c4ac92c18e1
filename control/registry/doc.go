// Package registry is the generic REST store that serves every resource of the
// API: one Store type, configured per resource by a Strategy (defaults,
// validation, status rules, selectable fields), on top of control/storage.
//
// It holds the object semantics kube-apiserver puts in its generic registry:
// generateName, uid, creationTimestamp and generation on create; optimistic
// concurrency and spec/status separation on update; finalizers, graceful
// deletion and propagation policies on delete; dry run everywhere. Resources
// differ only in their Strategy, never in handler code, so a new kind costs a
// table entry and its rules.
package registry
