// Package endpointslice is the EndpointSlice controller: for every Service
// with a selector it keeps discovery.k8s.io/v1 EndpointSlices listing the
// selected pods, the way upstream's controller does, because every consumer
// (the node agents' eBPF service maps, DNS, kubectl) reads slices.
//
// The slices carry upstream's labels (kubernetes.io/service-name,
// endpointslice.kubernetes.io/managed-by) and a controller reference to the
// Service, so that the garbage collector removes them with it and other
// writers' slices are left alone. Each endpoint reports ready / serving /
// terminating exactly as upstream computes them, because load balancers
// depend on the distinction (a terminating pod may still serve).
//
// Design choices:
//
//   - Ports are resolved per pod (a named targetPort may map to different
//     container ports on different pods), so endpoints are grouped by their
//     resolved port list and each group gets its own slices.
//   - The reconciler keeps endpoints in the slice they already live in and
//     fills existing slices before creating new ones, capped at 100 endpoints
//     per slice: watchers see small diffs rather than the whole set rewritten.
//   - A slice is written only when its content differs, so a resync or an
//     unrelated pod change costs no API writes.
//   - Slices are created with generateName, so a stale informer cache could
//     lead to duplicates. A tracker remembers the resourceVersions this
//     controller wrote and defers a sync until the cache has caught up.
//
// The pod-selection and port helpers are exported because the legacy
// Endpoints controller (package endpoints) must agree with the slices.
package endpointslice
