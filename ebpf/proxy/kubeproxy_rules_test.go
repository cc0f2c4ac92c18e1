package proxy

import (
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"net/netip"
	"strings"
	"testing"
)

// This file writes the nat table kube-proxy's iptables mode programs for a
// set of ClusterIP Services, so that the benchmark can compare the eBPF
// datapath with the rule set it replaces. The shape follows upstream's
// proxier: KUBE-SERVICES holds one jump per ClusterIP:port into a
// KUBE-SVC chain, which marks traffic from outside the cluster CIDR for
// masquerade and picks one KUBE-SEP chain with a cascade of
// `statistic --mode random` rules; each KUBE-SEP chain marks hairpin
// traffic and DNATs to its endpoint. The built-in chains jump into the
// KUBE chains as kube-proxy's jump rules do.

// ruleService is one single-port TCP Service of the generated rule set.
type ruleService struct {
	namespace, name, port string
	clusterIP             netip.Addr
	servicePort           uint16
	endpoints             []netip.AddrPort
}

func (s ruleService) portName() string { return s.namespace + "/" + s.name + ":" + s.port }

// chainHash names a chain as upstream does: the first 16 characters of the
// base32 SHA-256 of what the chain is for.
func chainHash(prefix string, parts ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(parts, "")))
	return prefix + base32.StdEncoding.EncodeToString(sum[:])[:16]
}

func (s ruleService) svcChain() string { return chainHash("KUBE-SVC-", s.portName(), "tcp") }

func (s ruleService) sepChain(ep netip.AddrPort) string {
	return chainHash("KUBE-SEP-", s.portName(), "tcp", ep.String())
}

// kubeProxyRules renders the iptables-restore input for the nat table.
func kubeProxyRules(svcs []ruleService, clusterCIDR netip.Prefix) string {
	var chains, rules strings.Builder
	chains.WriteString("*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n")
	chains.WriteString(":KUBE-SERVICES - [0:0]\n:KUBE-NODEPORTS - [0:0]\n:KUBE-POSTROUTING - [0:0]\n:KUBE-MARK-MASQ - [0:0]\n")
	rules.WriteString(`-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES` + "\n")
	rules.WriteString(`-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES` + "\n")
	rules.WriteString(`-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING` + "\n")
	rules.WriteString("-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN\n")
	rules.WriteString("-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000\n")
	rules.WriteString(`-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully` + "\n")
	rules.WriteString("-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000\n")

	for _, s := range svcs {
		svc := s.svcChain()
		fmt.Fprintf(&chains, ":%s - [0:0]\n", svc)
		comment := fmt.Sprintf(`"%s cluster IP"`, s.portName())
		fmt.Fprintf(&rules, "-A KUBE-SERVICES -m comment --comment %s -m tcp -p tcp -d %s/32 --dport %d -j %s\n",
			comment, s.clusterIP, s.servicePort, svc)
		fmt.Fprintf(&rules, "-A %s -m comment --comment %s -m tcp -p tcp -d %s/32 --dport %d ! -s %s -j KUBE-MARK-MASQ\n",
			svc, comment, s.clusterIP, s.servicePort, clusterCIDR)
		for i, ep := range s.endpoints {
			sep := s.sepChain(ep)
			fmt.Fprintf(&chains, ":%s - [0:0]\n", sep)
			epComment := fmt.Sprintf(`"%s -> %s"`, s.portName(), ep)
			if left := len(s.endpoints) - i; left > 1 {
				fmt.Fprintf(&rules, "-A %s -m comment --comment %s -m statistic --mode random --probability %0.10f -j %s\n",
					svc, epComment, 1/float64(left), sep)
			} else {
				fmt.Fprintf(&rules, "-A %s -m comment --comment %s -j %s\n", svc, epComment, sep)
			}
			fmt.Fprintf(&rules, "-A %s -m comment --comment %s -s %s/32 -j KUBE-MARK-MASQ\n", sep, s.portName(), ep.Addr())
			fmt.Fprintf(&rules, "-A %s -m comment --comment %s -m tcp -p tcp -j DNAT --to-destination %s\n", sep, s.portName(), ep)
		}
	}
	rules.WriteString(`-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS` + "\n")
	return chains.String() + rules.String() + "COMMIT\n"
}

// benchServices makes n Services with three endpoints each. Every address
// is in a benchmarking range (198.18.0.0/15): cluster IPs from 198.18.0.0,
// endpoints from 198.19.0.0. The last Service's endpoints are last, the
// addresses the benchmark listens on.
func benchServices(n int, last [3]netip.AddrPort) []ruleService {
	svcs := make([]ruleService, n)
	for i := range svcs {
		s := ruleService{
			namespace: "bench", name: fmt.Sprintf("svc-%05d", i), port: "http",
			clusterIP: offset(netip.MustParseAddr("198.18.0.10"), i), servicePort: 80,
		}
		for j := range 3 {
			s.endpoints = append(s.endpoints, netip.AddrPortFrom(offset(netip.MustParseAddr("198.19.0.10"), 3*i+j), 8080))
		}
		if i == n-1 {
			s.endpoints = last[:]
		}
		svcs[i] = s
	}
	return svcs
}

func offset(a netip.Addr, n int) netip.Addr {
	b := a.As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v += uint32(n)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// TestKubeProxyRulesShape checks the generated rule set's structure, so
// that the benchmark measures the rule count kube-proxy would write.
func TestKubeProxyRulesShape(t *testing.T) {
	last := [3]netip.AddrPort{netip.MustParseAddrPort("198.51.100.1:8080"), netip.MustParseAddrPort("198.51.100.2:8080"), netip.MustParseAddrPort("198.51.100.3:8080")}
	svcs := benchServices(4, last)
	out := kubeProxyRules(svcs, netip.MustParsePrefix("198.19.0.0/16"))
	count := func(sub string) int { return strings.Count(out, sub) }
	if got := count("-A KUBE-SERVICES "); got != 4+1 {
		t.Errorf("%d KUBE-SERVICES rules, want one per service and the nodeports jump", got)
	}
	if got := count(":KUBE-SVC-"); got != 4 {
		t.Errorf("%d KUBE-SVC chains", got)
	}
	if got := count(":KUBE-SEP-"); got != 12 {
		t.Errorf("%d KUBE-SEP chains", got)
	}
	if count("--probability 0.3333333333") != 4 || count("--probability 0.5000000000") != 4 {
		t.Errorf("endpoint probabilities wrong:\n%s", out)
	}
	if !strings.Contains(out, "-d 198.18.0.13/32 --dport 80 -j "+svcs[3].svcChain()) ||
		!strings.Contains(out, "-j DNAT --to-destination 198.51.100.3:8080") {
		t.Errorf("last service's rules missing:\n%s", out)
	}
	if len(svcs[0].svcChain()) != len("KUBE-SVC-")+16 || svcs[0].svcChain() == svcs[1].svcChain() {
		t.Errorf("chain names %s %s", svcs[0].svcChain(), svcs[1].svcChain())
	}
}
