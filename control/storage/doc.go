// Package storage keeps API objects in etcd the way kube-apiserver does, and
// serves reads and watches from an in-memory watch cache.
//
// Layout and versions. An object lives at
// /registry/<resource>/<namespace>/<name> (or /registry/<resource>/<name>),
// and its resourceVersion is the etcd ModRevision of its key. The version is
// never stored inside the value: it is cleared before writing and filled in
// from the key's revision on reading, so it cannot disagree with etcd.
//
// Why JSON. Values are encoding/json of the typed k8s.io/api objects,
// TypeMeta included. JSON is what the API serves, what etcdctl shows and what
// an operator can repair by hand; protobuf would be smaller but nothing on an
// edge node is bound by value size, and it would need generated codecs for
// every type we add.
//
// Why compare-and-swap. Every write is an etcd transaction conditioned on the
// key's ModRevision (or on CreateRevision == 0 for creates). Several API
// servers may share one etcd, so a lock held in one process protects nothing;
// the CAS makes etcd the only arbiter, and a lost race is simply retried with
// the fresh value.
//
// Why a watch cache. Every controller, scheduler and node agent watches, and
// informers relist on every restart. Opening one etcd watch per client would
// multiply etcd's work by the number of clients; instead each resource has
// ONE etcd watch feeding an in-memory copy of its objects and a ring buffer of
// recent events, fanned out to any number of watchers with per-watcher
// filtering. Lists that do not need a specific historic revision are answered
// from that copy once it provably has caught up with etcd (a progress request
// on the watch stream proves it without a write). Single-object reads go to
// etcd: one quorum read costs no more than proving the cache fresh. A
// watcher that cannot keep up is closed rather than allowed to stall the
// others; it relists and resumes, exactly as with kube-apiserver.
//
// Compaction. etcd keeps every revision until compacted; Backend compacts on
// a schedule like kube-apiserver, after which older resourceVersions and
// continue tokens yield 410 Expired.
package storage
