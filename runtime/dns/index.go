package dns

import (
	"net/netip"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// serviceKey names a Service; both parts are lower case, as DNS lookups
// compare them.
type serviceKey struct{ namespace, name string }

// port is a named port of a Service or an EndpointSlice; name and proto
// are lower case.
type port struct {
	name, proto string
	port        uint16
}

// service holds what DNS needs of a Service.
type service struct {
	clusterIPs      []netip.Addr
	headless        bool
	externalName    string
	ports           []port
	publishNotReady bool
}

// endpoint holds what DNS needs of one endpoint of an EndpointSlice.
type endpoint struct {
	addrs    []netip.Addr
	hostname string
	ready    bool
}

// slice holds an EndpointSlice's endpoints and their ports.
type slice struct {
	endpoints []endpoint
	ports     []port
}

// ptrTarget is the owner of a reverse record: the Service, and for a
// headless endpoint its label within the Service.
type ptrTarget struct {
	key  serviceKey
	host string
}

// index is the in-memory view the DNS handlers read. The informer handlers
// change one Service's entries at a time, so a lookup costs a few map
// reads whatever the cluster's size.
type index struct {
	mu         sync.RWMutex
	services   map[serviceKey]*service
	slices     map[serviceKey]map[string]*slice
	namespaces map[string]int // Services per namespace
	ptr        map[netip.Addr]ptrTarget
	ptrOwned   map[serviceKey][]netip.Addr
}

func newIndex() *index {
	return &index{
		services:   map[serviceKey]*service{},
		slices:     map[serviceKey]map[string]*slice{},
		namespaces: map[string]int{},
		ptr:        map[netip.Addr]ptrTarget{},
		ptrOwned:   map[serviceKey][]netip.Addr{},
	}
}

func keyOf(namespace, name string) serviceKey {
	return serviceKey{strings.ToLower(namespace), strings.ToLower(name)}
}

func (ix *index) setService(svc *corev1.Service) {
	k := keyOf(svc.Namespace, svc.Name)
	s := &service{publishNotReady: svc.Spec.PublishNotReadyAddresses}
	switch {
	case svc.Spec.Type == corev1.ServiceTypeExternalName:
		s.externalName = strings.ToLower(strings.TrimSuffix(svc.Spec.ExternalName, "."))
	case svc.Spec.ClusterIP == corev1.ClusterIPNone:
		s.headless = true
	default:
		ips := svc.Spec.ClusterIPs
		if len(ips) == 0 && svc.Spec.ClusterIP != "" {
			ips = []string{svc.Spec.ClusterIP}
		}
		for _, ip := range ips {
			if a, err := netip.ParseAddr(ip); err == nil {
				s.clusterIPs = append(s.clusterIPs, a.Unmap())
			}
		}
	}
	for _, p := range svc.Spec.Ports {
		if p.Name == "" {
			continue // SRV names need the port's name
		}
		s.ports = append(s.ports, port{name: strings.ToLower(p.Name), proto: strings.ToLower(string(p.Protocol)), port: uint16(p.Port)})
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if _, ok := ix.services[k]; !ok {
		ix.namespaces[k.namespace]++
	}
	ix.services[k] = s
	ix.reindexPTR(k)
}

func (ix *index) deleteService(namespace, name string) {
	k := keyOf(namespace, name)
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if _, ok := ix.services[k]; !ok {
		return
	}
	delete(ix.services, k)
	if ix.namespaces[k.namespace]--; ix.namespaces[k.namespace] <= 0 {
		delete(ix.namespaces, k.namespace)
	}
	ix.reindexPTR(k)
}

// sliceService is the Service an EndpointSlice belongs to, by the label
// every slice producer sets.
func sliceService(es *discoveryv1.EndpointSlice) (serviceKey, bool) {
	name := es.Labels[discoveryv1.LabelServiceName]
	if name == "" {
		return serviceKey{}, false
	}
	return keyOf(es.Namespace, name), true
}

func (ix *index) setSlice(es *discoveryv1.EndpointSlice) {
	k, ok := sliceService(es)
	if !ok {
		return
	}
	s := &slice{}
	for _, p := range es.Ports {
		if p.Port == nil {
			continue
		}
		sp := port{proto: "tcp", port: uint16(*p.Port)}
		if p.Name != nil {
			sp.name = strings.ToLower(*p.Name)
		}
		if p.Protocol != nil {
			sp.proto = strings.ToLower(string(*p.Protocol))
		}
		s.ports = append(s.ports, sp)
	}
	for _, e := range es.Endpoints {
		// A nil ready condition means unknown, which consumers take as
		// ready.
		ep := endpoint{ready: e.Conditions.Ready == nil || *e.Conditions.Ready}
		if e.Hostname != nil {
			ep.hostname = strings.ToLower(*e.Hostname)
		}
		for _, a := range e.Addresses {
			if ip, err := netip.ParseAddr(a); err == nil {
				ep.addrs = append(ep.addrs, ip.Unmap())
			}
		}
		s.endpoints = append(s.endpoints, ep)
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	m := ix.slices[k]
	if m == nil {
		m = map[string]*slice{}
		ix.slices[k] = m
	}
	m[es.Name] = s
	ix.reindexPTR(k)
}

func (ix *index) deleteSlice(es *discoveryv1.EndpointSlice) {
	k, ok := sliceService(es)
	if !ok {
		return
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if m := ix.slices[k]; m != nil {
		delete(m, es.Name)
		if len(m) == 0 {
			delete(ix.slices, k)
		}
	}
	ix.reindexPTR(k)
}

// reindexPTR replaces the reverse records of one Service. Callers hold
// the write lock.
func (ix *index) reindexPTR(k serviceKey) {
	for _, a := range ix.ptrOwned[k] {
		if t, ok := ix.ptr[a]; ok && t.key == k {
			delete(ix.ptr, a)
		}
	}
	delete(ix.ptrOwned, k)
	s := ix.services[k]
	if s == nil {
		return
	}
	var owned []netip.Addr
	for _, a := range s.clusterIPs {
		ix.ptr[a] = ptrTarget{key: k}
		owned = append(owned, a)
	}
	if s.headless {
		ix.eachEndpoint(k, s, func(ep *endpoint, _ *slice) {
			for _, a := range ep.addrs {
				ix.ptr[a] = ptrTarget{key: k, host: endpointLabel(ep, a)}
				owned = append(owned, a)
			}
		})
	}
	if len(owned) > 0 {
		ix.ptrOwned[k] = owned
	}
}

// eachEndpoint calls fn for the endpoints of k that DNS publishes: the
// ready ones, or all when the Service publishes not-ready addresses.
// Callers hold the lock.
func (ix *index) eachEndpoint(k serviceKey, s *service, fn func(*endpoint, *slice)) {
	for _, sl := range ix.slices[k] {
		for i := range sl.endpoints {
			ep := &sl.endpoints[i]
			if ep.ready || s.publishNotReady {
				fn(ep, sl)
			}
		}
	}
}

// endpointLabel is the first label of an endpoint's name: its hostname,
// or its address with dashes (a-b-c-d, or the IPv6 form with dashes for
// colons) as CoreDNS names endpoints without one.
func endpointLabel(ep *endpoint, a netip.Addr) string {
	if ep.hostname != "" {
		return ep.hostname
	}
	return dashed(a)
}

func dashed(a netip.Addr) string {
	if a.Is4() {
		return strings.ReplaceAll(a.String(), ".", "-")
	}
	return strings.ReplaceAll(a.StringExpanded(), ":", "-")
}
