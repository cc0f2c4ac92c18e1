package proxy

import (
	"cmp"
	"net/netip"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/wasmkube/wasmkube/ebpf/lb"
)

// defaultAffinityTimeout is upstream's default for
// sessionAffinityConfig.clientIP.timeoutSeconds (three hours).
const defaultAffinityTimeout = 10800 * time.Second

// loopback is where NodePorts also answer for processes on the node, as
// kube-proxy's iptables mode does (route_localnet).
var loopback = netip.AddrFrom4([4]byte{127, 0, 0, 1})

// node is what translation needs to know about the node the proxy runs on.
type node struct {
	name string
	ips  []netip.Addr // IPv4 only, where NodePorts answer
}

// translate computes every frontend one Service asks for, with its
// backends taken from the Service's EndpointSlices. It returns nil for a
// Service the proxy does not handle (ExternalName, headless).
func translate(svc *corev1.Service, eps []*discoveryv1.EndpointSlice, n node) map[lb.Frontend]lb.Service {
	if svc.Spec.Type == corev1.ServiceTypeExternalName || svc.Spec.ClusterIP == corev1.ClusterIPNone {
		return nil
	}
	var affinity time.Duration
	if svc.Spec.SessionAffinity == corev1.ServiceAffinityClientIP {
		affinity = defaultAffinityTimeout
		if c := svc.Spec.SessionAffinityConfig; c != nil && c.ClientIP != nil && c.ClientIP.TimeoutSeconds != nil {
			affinity = time.Duration(*c.ClientIP.TimeoutSeconds) * time.Second
		}
	}
	internalLocal := svc.Spec.InternalTrafficPolicy != nil && *svc.Spec.InternalTrafficPolicy == corev1.ServiceInternalTrafficPolicyLocal
	externalLocal := svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal

	clusterIPs := ipv4s(svc.Spec.ClusterIPs)
	if len(clusterIPs) == 0 {
		clusterIPs = ipv4s([]string{svc.Spec.ClusterIP})
	}
	// External IPs and LoadBalancer addresses are answered on from inside
	// the node and from outside alike.
	externals := ipv4s(svc.Spec.ExternalIPs)
	for _, ing := range svc.Status.LoadBalancer.Ingress {
		externals = append(externals, ipv4s([]string{ing.IP})...)
	}
	hasNodePort := svc.Spec.Type == corev1.ServiceTypeNodePort || svc.Spec.Type == corev1.ServiceTypeLoadBalancer

	out := map[lb.Frontend]lb.Service{}
	for i := range svc.Spec.Ports {
		sp := &svc.Spec.Ports[i]
		proto, ok := protocol(sp.Protocol)
		if !ok {
			continue
		}
		all, local := backends(sp, eps, n.name)
		// Each frontend gets its own slice: the datapath may keep them.
		cluster := func() lb.Service { return lb.Service{Backends: slices.Clone(all), AffinityTimeout: affinity} }
		onlyLocal := func() lb.Service { return lb.Service{Backends: slices.Clone(local), AffinityTimeout: affinity} }
		external := cluster
		if externalLocal {
			external = onlyLocal
		}
		internal := cluster
		if internalLocal {
			internal = onlyLocal
		}
		add := func(addr netip.Addr, port int32, scope lb.Scope, s lb.Service) {
			out[lb.Frontend{Addr: addr, Port: uint16(port), Proto: proto, Scope: scope}] = s
		}
		for _, ip := range clusterIPs {
			add(ip, sp.Port, lb.ScopeSocket, internal())
		}
		if hasNodePort && sp.NodePort != 0 {
			// The node's own addresses mean the node from its own
			// network namespace and, for its IPs, from its pods (as
			// with kube-proxy); in a pod 127.0.0.1 is the pod, and
			// another namespace is another host, whose packets tc sees.
			hostOnly := func() lb.Service { s := cluster(); s.HostOnly = true; return s }
			nodeAddr := func() lb.Service { s := cluster(); s.NodeAddr = true; return s }
			for _, ip := range n.ips {
				add(ip, sp.NodePort, lb.ScopeSocket, nodeAddr())
				add(ip, sp.NodePort, lb.ScopeExternal, external())
			}
			add(loopback, sp.NodePort, lb.ScopeSocket, hostOnly())
		}
		for _, ip := range externals {
			add(ip, sp.Port, lb.ScopeSocket, cluster())
			add(ip, sp.Port, lb.ScopeExternal, external())
		}
	}
	return out
}

func protocol(p corev1.Protocol) (lb.Protocol, bool) {
	switch p {
	case corev1.ProtocolTCP, "":
		return lb.TCP, true
	case corev1.ProtocolUDP:
		return lb.UDP, true
	}
	return 0, false
}

func ipv4s(addrs []string) []netip.Addr {
	var out []netip.Addr
	for _, s := range addrs {
		a, err := netip.ParseAddr(s)
		if err == nil && a.Is4() {
			out = append(out, a)
		}
	}
	return out
}

// candidate is one endpoint address for one Service port.
type candidate struct {
	b                           lb.Backend
	local                       bool
	ready, serving, terminating bool
}

// backends returns the endpoints a Service port routes to, cluster-wide
// and on this node only. As upstream, ready endpoints are used; when a set
// has none ready, its serving and terminating ones are used instead, so
// that connections drain to pods that are shutting down rather than fail.
func backends(sp *corev1.ServicePort, eps []*discoveryv1.EndpointSlice, nodeName string) (all, local []lb.Backend) {
	var cands []candidate
	for _, es := range eps {
		if es.AddressType != discoveryv1.AddressTypeIPv4 {
			continue
		}
		port, ok := slicePort(sp, es.Ports)
		if !ok {
			continue
		}
		for i := range es.Endpoints {
			ep := &es.Endpoints[i]
			if len(ep.Addresses) == 0 {
				continue
			}
			// Upstream routes to an endpoint's first address only.
			addr, err := netip.ParseAddr(ep.Addresses[0])
			if err != nil || !addr.Is4() {
				continue
			}
			c := candidate{b: lb.Backend{Addr: addr, Port: port}}
			c.ready = ep.Conditions.Ready == nil || *ep.Conditions.Ready
			c.serving = c.ready
			if ep.Conditions.Serving != nil {
				c.serving = *ep.Conditions.Serving
			}
			c.terminating = ep.Conditions.Terminating != nil && *ep.Conditions.Terminating
			c.local = nodeName != "" && ep.NodeName != nil && *ep.NodeName == nodeName
			cands = append(cands, c)
		}
	}
	all = pick(cands, func(candidate) bool { return true })
	local = pick(cands, func(c candidate) bool { return c.local })
	return all, local
}

func pick(cands []candidate, in func(candidate) bool) []lb.Backend {
	var ready, draining []lb.Backend
	for _, c := range cands {
		if !in(c) {
			continue
		}
		switch {
		case c.ready:
			ready = append(ready, c.b)
		case c.serving && c.terminating:
			draining = append(draining, c.b)
		}
	}
	if len(ready) == 0 {
		ready = draining
	}
	return sortBackends(ready)
}

// sortBackends orders backends by address then port and drops duplicates,
// so that the same endpoints always give the same map contents.
func sortBackends(bs []lb.Backend) []lb.Backend {
	slices.SortFunc(bs, func(a, b lb.Backend) int {
		if c := a.Addr.Compare(b.Addr); c != 0 {
			return c
		}
		return cmp.Compare(a.Port, b.Port)
	})
	return slices.Compact(bs)
}

// slicePort finds the slice port serving a Service port: same name (both
// may be empty) and same protocol.
func slicePort(sp *corev1.ServicePort, ports []discoveryv1.EndpointPort) (uint16, bool) {
	proto := sp.Protocol
	if proto == "" {
		proto = corev1.ProtocolTCP
	}
	for _, p := range ports {
		name := ""
		if p.Name != nil {
			name = *p.Name
		}
		pp := corev1.ProtocolTCP
		if p.Protocol != nil {
			pp = *p.Protocol
		}
		if name != sp.Name || pp != proto || p.Port == nil {
			continue
		}
		if *p.Port <= 0 || *p.Port > 65535 {
			return 0, false
		}
		return uint16(*p.Port), true
	}
	return 0, false
}

// servicesEqual compares what a frontend does, backends in order: a
// frontend whose flags changed (an agent upgrade) is written again.
func servicesEqual(a, b lb.Service) bool {
	return a.AffinityTimeout == b.AffinityTimeout && a.HostOnly == b.HostOnly && a.NodeAddr == b.NodeAddr &&
		slices.Equal(a.Backends, b.Backends)
}
