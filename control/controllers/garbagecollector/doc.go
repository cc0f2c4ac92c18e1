// Package garbagecollector deletes objects whose owners are gone and
// carries out the foreground and orphan deletion policies, as upstream's
// garbage collector does, over every kind the API server serves.
//
// The API server only marks deletions: with propagationPolicy Foreground it
// adds the foregroundDeletion finalizer to the owner, with Orphan the orphan
// finalizer, and with Background it deletes the owner at once. This
// controller does the rest:
//
//   - background: a dependent none of whose owners exists any more is
//     deleted (itself in the background, so the cascade goes on down);
//   - foreground: the dependents of an owner with foregroundDeletion are
//     deleted (foreground too when they have dependents of their own), and
//     the finalizer is removed once no dependent with blockOwnerDeletion is
//     left, which lets the API server remove the owner;
//   - orphan: the ownerReferences to an owner with the orphan finalizer are
//     removed from its dependents, then the finalizer.
//
// Design: one metadata informer per resource (discovery decides which),
// because only metadata matters here and full objects of every kind would
// cost memory on a small node. The informers feed an in-memory graph from
// owner UID to dependents; the work queue holds object UIDs. An owner the
// graph does not know is looked up live before anything is deleted, so a
// lagging informer never causes a wrong deletion. Writes are JSON merge
// patches carrying the object's resourceVersion, which work for every kind
// (strategic merge does not exist for custom resources) and fail cleanly on
// a concurrent change, to be retried.
package garbagecollector
