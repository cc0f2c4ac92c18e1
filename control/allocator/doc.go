// Package allocator hands out Service cluster IPs and NodePorts, as
// kube-apiserver does while it creates a Service.
//
// A range is a bitmap persisted in etcd (like upstream's RangeAllocation
// objects under /registry/ranges/), changed only by compare-and-swap
// transactions. So several API servers sharing one etcd never hand out the
// same address, and a restart starts from what is really taken. Dynamic
// picks are random, which keeps a freed address from being reused at once
// by the next Service.
package allocator
