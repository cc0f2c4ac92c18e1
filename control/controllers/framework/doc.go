// Package framework is the shape every controller of the controller manager
// shares, the one of Kubernetes' sample-controller: shared informers feed
// object keys into a rate-limited workqueue, and workers call one idempotent
// Sync(key) per key. Sync reads the current state from listers, computes
// what should be, and writes the difference through client-go; a failure
// requeues the key with exponential back-off.
//
// Keeping the shape in one place keeps the controllers small: each one is its
// event handlers (which keys to enqueue) and its Sync.
package framework
