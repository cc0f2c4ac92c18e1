// Package nodeipam gives every Node a pod CIDR (spec.podCIDR and
// spec.podCIDRs) carved from the cluster CIDR, as upstream's node IPAM
// controller does with its range allocator. The node agent assigns pod IPs
// from that range and the eBPF data path routes it to the node, so two nodes
// must never share a range.
//
// The allocator state lives only in memory and is rebuilt from the Nodes
// at start, before any Node is processed: the Nodes themselves are the
// record of what is taken, so a restart can neither lose nor double-assign
// a range. A range is freed when its Node is deleted. Allocation continues
// after the last range handed out (upstream's order) rather than taking the
// lowest free one, so a freed range is reused as late as possible and stale
// routes to a deleted node have time to disappear.
//
// A Node whose podCIDR is already set keeps it (the field is immutable);
// it is only marked as used. When the range is exhausted the Node gets a
// CIDRNotAvailable event and waits: every release re-queues the Nodes still
// without a range.
package nodeipam
