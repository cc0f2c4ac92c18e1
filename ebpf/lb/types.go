package lb

import (
	"net/netip"
	"strconv"
	"time"
)

// Protocol is a frontend's transport protocol, as IPPROTO_* numbers.
type Protocol uint8

const (
	TCP Protocol = 6
	UDP Protocol = 17
)

func (p Protocol) String() string {
	switch p {
	case TCP:
		return "TCP"
	case UDP:
		return "UDP"
	}
	return "proto-" + strconv.Itoa(int(p))
}

// Scope says which traffic a frontend applies to. A Service address that is
// reachable both from inside the node and from outside (a NodePort, an
// external IP, a LoadBalancer address) has one frontend per scope, because
// the traffic policies may give them different backends.
type Scope uint8

const (
	// ScopeSocket frontends are matched by the socket hooks: connections
	// made on this node (pods, sandboxes, host processes).
	ScopeSocket Scope = 0
	// ScopeExternal frontends are matched by the tc programs: packets that
	// arrive on the node's interface from outside.
	ScopeExternal Scope = 1
)

func (s Scope) String() string {
	if s == ScopeExternal {
		return "external"
	}
	return "socket"
}

// Frontend is an address a Service answers on.
type Frontend struct {
	Addr  netip.Addr // IPv4
	Port  uint16
	Proto Protocol
	Scope Scope
}

// Backend is one endpoint a frontend's traffic may go to.
type Backend struct {
	Addr netip.Addr // IPv4
	Port uint16
}

// Service is what one frontend does: pick one of Backends at random. With no
// backends, connections are refused (ECONNREFUSED) and packets dropped; from
// outside (ScopeExternal), every packet is answered with an ICMP port
// unreachable, which the client sees as ECONNREFUSED too.
type Service struct {
	Backends []Backend
	// AffinityTimeout, when not zero, keeps a client on the backend it got
	// first for that long after its last connection (sessionAffinity:
	// ClientIP). Socket-scope clients are told apart by network namespace,
	// external ones by source address.
	AffinityTimeout time.Duration
	// HostOnly frontends (socket scope) are translated only for sockets of
	// the host's network namespace: addresses of the node itself, which in
	// a pod (127.0.0.1) or in another namespace standing for another host
	// mean something else.
	HostOnly bool
	// NodeAddr frontends (socket scope) are NodePorts on one of the
	// node's own IPs: translated for sockets of the host's network
	// namespace and for the node's pods (tasks under
	// NodeConfig.PodsCgroup), which reach their own node's NodePorts as
	// with kube-proxy; other namespaces stand for other hosts. Not with
	// HostOnly.
	NodeAddr bool
}

// Entry is a programmed frontend read back from the maps.
type Entry struct {
	Frontend
	Service
}

// NodeConfig is what the tc programs need to know about the node.
type NodeConfig struct {
	// NodeIP is the address NodePorts answer on from outside, and the
	// source address of masqueraded pod traffic.
	NodeIP netip.Addr
	// ClusterCIDR holds every pod address; traffic from it to anything
	// outside it (and outside ServiceCIDR) is masqueraded as NodeIP.
	ClusterCIDR netip.Prefix
	// ServiceCIDR is never masqueraded.
	ServiceCIDR netip.Prefix
	// PodCIDR is this node's own pod range. Outside traffic whose backend
	// is beyond it (on another node) is source NATed to NodeIP, so that
	// the reply comes back through this node; backends in it (and NodeIP)
	// see the client's address. Unset, every backend counts as local.
	PodCIDR netip.Prefix
	// PodsCgroup is the cgroup every pod of this node runs under, as a
	// path in the cgroup2 hierarchy (for example "/wasmkube/node-1"); it
	// must exist. Sockets of tasks below it are the node's pods for
	// NodeAddr frontends. Empty, only the host's network namespace is.
	PodsCgroup string
}
