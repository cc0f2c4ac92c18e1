// Package etcd runs the control plane's etcd and connects to it.
//
// An edge node runs everything in one process, so by default the API server
// embeds a single-member etcd (go.etcd.io/etcd/server/v3/embed) listening on
// loopback only: no other host can reach it, and no TLS setup is needed. A
// bigger site instead points several API servers at an external cluster with
// --etcd-servers; NewClient serves both cases so the storage layer never
// knows which one it talks to. The API server of an embedded member talks
// to it in-process (Embedded.Client, etcd's v3client): a write then costs
// no gRPC round trip over loopback, about a third of its latency on a small
// node, and a read most of its.
//
// The embedded server is tuned for small machines: a bounded backend quota,
// few retained snapshot and WAL files, no metrics
// listener and error-level logging. Watch progress notifications are kept
// frequent because the API server's watch cache relies on them to prove it is
// up to date without writing to etcd.
package etcd
