// Package ipam hands out pod IPs from a node's podCIDR.
//
// The first usable address of the range is the gateway, which lives on the
// node's bridge; pods get the addresses after it. Every allocation is one
// file in a state directory, named after the address and holding the owner
// (the pod sandbox id). The filesystem is the only source of truth: there is
// no in-memory table that could disagree with it after an agent restart, and
// two allocators over the same directory (an old and a new agent, or two
// goroutines) can never hand out the same address, because claiming an
// address is an exclusive link(2) of a fully written file onto its name. A
// crash therefore leaves either no claim or a complete one, never an empty
// file whose owner is unknown.
//
// Owners lists every claim so that the agent can garbage-collect addresses
// of sandboxes that no longer exist (leaked by a crash between allocation
// and sandbox creation, or by a teardown that never ran).
package ipam
