package dns

import (
	"net"
	"net/netip"
	"strings"

	"github.com/miekg/dns"
)

// result is what the cluster zone holds for one question.
type result struct {
	answer, extra []dns.RR
	// exists tells NODATA (the name exists with other types) from NXDOMAIN
	// when answer is empty.
	exists bool
	// target is an ExternalName Service's name, to be resolved further.
	target string
}

// lookup answers qtype for the cluster-zone name whose labels below the
// zone are rel (lower case, leftmost first); owner is the name as asked,
// which the records carry.
func (s *Server) lookup(owner string, rel []string, qtype uint16) result {
	n := len(rel)
	if n == 0 {
		r := result{exists: true}
		switch qtype {
		case dns.TypeSOA:
			r.answer = []dns.RR{s.soa(owner)}
		case dns.TypeNS:
			r.answer = []dns.RR{&dns.NS{Hdr: s.hdr(owner, dns.TypeNS), Ns: "ns.dns." + s.zone}}
		}
		return r
	}
	switch rel[n-1] {
	case "svc":
		return s.lookupService(owner, rel[:n-1], qtype)
	case "pod":
		return s.lookupPod(owner, rel[:n-1], qtype)
	}
	return result{}
}

func (s *Server) lookupService(owner string, rel []string, qtype uint16) result {
	s.ix.mu.RLock()
	defer s.ix.mu.RUnlock()
	switch len(rel) {
	case 0: // svc.<zone>
		return result{exists: true}
	case 1: // <ns>.svc.<zone>
		return result{exists: s.ix.namespaces[rel[0]] > 0}
	case 2: // <svc>.<ns>.svc.<zone>
		return s.serviceRecords(owner, serviceKey{rel[1], rel[0]}, qtype)
	case 3:
		k := serviceKey{rel[2], rel[1]}
		if strings.HasPrefix(rel[0], "_") {
			// _<proto>.<svc>...: a name only because SRV names sit below it.
			return result{exists: s.hasSRV(k, "", rel[0][1:])}
		}
		return s.endpointRecords(owner, k, rel[0], qtype)
	case 4: // _<port>._<proto>.<svc>.<ns>.svc.<zone>
		if !strings.HasPrefix(rel[0], "_") || !strings.HasPrefix(rel[1], "_") {
			return result{}
		}
		k := serviceKey{rel[3], rel[2]}
		r := result{exists: s.hasSRV(k, rel[0][1:], rel[1][1:])}
		if r.exists && qtype == dns.TypeSRV {
			r.answer, r.extra = s.srvRecords(owner, k, rel[0][1:], rel[1][1:])
		}
		return r
	}
	return result{}
}

// serviceRecords answers for a Service's own name. Callers hold the read
// lock.
func (s *Server) serviceRecords(owner string, k serviceKey, qtype uint16) result {
	svc := s.ix.services[k]
	if svc == nil {
		return result{}
	}
	r := result{exists: true}
	switch {
	case svc.externalName != "":
		target := dns.Fqdn(svc.externalName)
		r.answer = []dns.RR{&dns.CNAME{Hdr: s.hdr(owner, dns.TypeCNAME), Target: target}}
		r.target = target
	case qtype == dns.TypeSRV:
		r.answer, r.extra = s.srvRecords(owner, k, "", "")
	case svc.headless:
		seen := map[netip.Addr]bool{}
		s.ix.eachEndpoint(k, svc, func(ep *endpoint, _ *slice) {
			for _, a := range ep.addrs {
				if !seen[a] {
					seen[a] = true
					r.answer = s.appendAddr(r.answer, owner, a, qtype)
				}
			}
		})
	default:
		for _, a := range svc.clusterIPs {
			r.answer = s.appendAddr(r.answer, owner, a, qtype)
		}
	}
	return r
}

// endpointRecords answers <host>.<svc>.<ns>.svc.<zone>, the name of a
// headless Service's endpoint by its hostname or dashed address. Callers
// hold the read lock.
func (s *Server) endpointRecords(owner string, k serviceKey, host string, qtype uint16) result {
	svc := s.ix.services[k]
	if svc == nil || !svc.headless {
		return result{}
	}
	var r result
	s.ix.eachEndpoint(k, svc, func(ep *endpoint, _ *slice) {
		for _, a := range ep.addrs {
			if endpointLabel(ep, a) == host {
				r.exists = true
				r.answer = s.appendAddr(r.answer, owner, a, qtype)
			}
		}
	})
	return r
}

func portMatches(p port, name, proto string) bool {
	return p.name != "" && (name == "" || p.name == name) && (proto == "" || p.proto == proto)
}

// hasSRV tells whether a Service has SRV records for the port name and
// protocol ("" matches any). Callers hold the read lock.
func (s *Server) hasSRV(k serviceKey, name, proto string) bool {
	svc := s.ix.services[k]
	if svc == nil || svc.externalName != "" {
		return false
	}
	if !svc.headless {
		for _, p := range svc.ports {
			if portMatches(p, name, proto) {
				return true
			}
		}
		return false
	}
	found := false
	s.ix.eachEndpoint(k, svc, func(_ *endpoint, sl *slice) {
		for _, p := range sl.ports {
			found = found || portMatches(p, name, proto)
		}
	})
	return found
}

// srvRecords are a Service's SRV records for the port name and protocol
// ("" matches any), with the targets' addresses as additional records: the
// Service's own name for a cluster IP, each endpoint's name for a headless
// Service. Callers hold the read lock.
func (s *Server) srvRecords(owner string, k serviceKey, name, proto string) (answer, extra []dns.RR) {
	svc := s.ix.services[k]
	if svc == nil || svc.externalName != "" {
		return nil, nil
	}
	svcName := k.name + "." + k.namespace + ".svc." + s.zone
	if !svc.headless {
		for _, p := range svc.ports {
			if portMatches(p, name, proto) {
				answer = append(answer, &dns.SRV{Hdr: s.hdr(owner, dns.TypeSRV), Weight: 100, Port: p.port, Target: svcName})
			}
		}
		if len(answer) > 0 {
			for _, a := range svc.clusterIPs {
				extra = s.appendAddr(extra, svcName, a, 0)
			}
		}
		return answer, extra
	}
	s.ix.eachEndpoint(k, svc, func(ep *endpoint, sl *slice) {
		for _, a := range ep.addrs {
			target := endpointLabel(ep, a) + "." + svcName
			added := false
			for _, p := range sl.ports {
				if portMatches(p, name, proto) {
					answer = append(answer, &dns.SRV{Hdr: s.hdr(owner, dns.TypeSRV), Port: p.port, Target: target})
					added = true
				}
			}
			if added {
				extra = s.appendAddr(extra, target, a, 0)
			}
		}
	})
	// Equal shares of 100, as CoreDNS weighs a Service's targets.
	for _, rr := range answer {
		rr.(*dns.SRV).Weight = uint16(100 / len(answer))
	}
	return answer, extra
}

// lookupPod answers <a-b-c-d>.<ns>.pod.<zone> with the address spelled in
// the name, for any namespace (CoreDNS's "pods insecure").
func (s *Server) lookupPod(owner string, rel []string, qtype uint16) result {
	switch len(rel) {
	case 0, 1:
		return result{exists: true}
	case 2:
		a, ok := undash(rel[0])
		if !ok {
			return result{}
		}
		return result{exists: true, answer: s.appendAddr(nil, owner, a, qtype)}
	}
	return result{}
}

// undash parses an address written with dashes for dots (IPv4) or colons
// (IPv6).
func undash(label string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(strings.ReplaceAll(label, "-", ".")); err == nil && a.Is4() {
		return a, true
	}
	if a, err := netip.ParseAddr(strings.ReplaceAll(label, "-", ":")); err == nil && a.Is6() && !a.Is4In6() {
		return a, true
	}
	return netip.Addr{}, false
}

// lookupPTR answers a reverse name for a cluster IP or a headless
// endpoint; ok is false for addresses the cluster does not own.
func (s *Server) lookupPTR(owner, qname string) (rr dns.RR, ok bool) {
	a, ok := reverseAddr(qname)
	if !ok {
		return nil, false
	}
	s.ix.mu.RLock()
	t, ok := s.ix.ptr[a]
	s.ix.mu.RUnlock()
	if !ok {
		return nil, false
	}
	target := t.key.name + "." + t.key.namespace + ".svc." + s.zone
	if t.host != "" {
		target = t.host + "." + target
	}
	return &dns.PTR{Hdr: s.hdr(owner, dns.TypePTR), Ptr: target}, true
}

// reverseAddr parses an in-addr.arpa or ip6.arpa name (lower case, fully
// qualified) of a whole address.
func reverseAddr(qname string) (netip.Addr, bool) {
	if rest, ok := strings.CutSuffix(qname, ".in-addr.arpa."); ok {
		l := strings.Split(rest, ".")
		if len(l) != 4 {
			return netip.Addr{}, false
		}
		a, err := netip.ParseAddr(l[3] + "." + l[2] + "." + l[1] + "." + l[0])
		return a, err == nil
	}
	if rest, ok := strings.CutSuffix(qname, ".ip6.arpa."); ok {
		l := strings.Split(rest, ".")
		if len(l) != 32 {
			return netip.Addr{}, false
		}
		var b strings.Builder
		for i := 31; i >= 0; i-- {
			b.WriteString(l[i])
			if i%4 == 0 && i > 0 {
				b.WriteByte(':')
			}
		}
		a, err := netip.ParseAddr(b.String())
		return a, err == nil
	}
	return netip.Addr{}, false
}

func (s *Server) hdr(name string, t uint16) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: t, Class: dns.ClassINET, Ttl: s.ttl}
}

// appendAddr appends an A or AAAA record for a, if its family is the one
// asked (qtype 0 takes either, for additional records).
func (s *Server) appendAddr(rrs []dns.RR, owner string, a netip.Addr, qtype uint16) []dns.RR {
	switch {
	case a.Is4() && (qtype == dns.TypeA || qtype == 0):
		return append(rrs, &dns.A{Hdr: s.hdr(owner, dns.TypeA), A: net.IP(a.AsSlice())})
	case a.Is6() && (qtype == dns.TypeAAAA || qtype == 0):
		return append(rrs, &dns.AAAA{Hdr: s.hdr(owner, dns.TypeAAAA), AAAA: net.IP(a.AsSlice())})
	}
	return rrs
}

// soa is the cluster zone's SOA, as CoreDNS's kubernetes plugin writes it;
// its minimum is the TTL of negative answers.
func (s *Server) soa(owner string) dns.RR {
	return &dns.SOA{
		Hdr:     s.hdr(owner, dns.TypeSOA),
		Ns:      "ns.dns." + s.zone,
		Mbox:    "hostmaster." + s.zone,
		Serial:  s.serial,
		Refresh: 7200,
		Retry:   1800,
		Expire:  86400,
		Minttl:  s.ttl,
	}
}
