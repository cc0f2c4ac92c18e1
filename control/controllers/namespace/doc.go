// Package namespace is the namespace controller: it empties a namespace
// being deleted and then releases it.
//
// The API server turns a deleted namespace Terminating and keeps it while
// its spec.finalizers hold "kubernetes". This controller deletes every
// namespaced resource in it — which ones is asked of discovery on each
// pass, so that kinds added later (custom resources) are covered without a
// list to maintain — waits until nothing is left (pods finish their grace
// period, finalizers run), reporting progress in the namespace's conditions
// with upstream's types and reasons, and finally removes its finalizer
// through the finalize subresource, upon which the API server deletes the
// namespace.
//
// Content is deleted in the background, as upstream does: the garbage
// collector and the kubelets finish what needs finishing, and the
// controller only looks again until the namespace is empty.
package namespace
