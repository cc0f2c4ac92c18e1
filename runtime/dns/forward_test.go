package dns

import (
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func TestForwarding(t *testing.T) {
	up := startUpstream(t, map[string]string{"www.example.test.": "192.0.2.7", "big.example.test.": "192.0.2.1"})
	dead := freeLoopback(t, 99) // nothing listens there: refused at once
	_, _, addr := startDNS(t, []string{dead.String(), up.addr})

	for _, network := range []string{"udp", "tcp"} {
		t.Run(network, func(t *testing.T) {
			m := new(dns.Msg)
			m.SetQuestion("WWW.example.test.", dns.TypeA)
			m.Id = 4242
			c := &dns.Client{Net: network, Timeout: 10 * time.Second}
			r, _, err := c.Exchange(m, addr)
			if err != nil {
				t.Fatal(err)
			}
			if r.Id != 4242 || r.Rcode != dns.RcodeSuccess || !slices.Equal(answers(r.Answer), []string{"A 192.0.2.7"}) {
				t.Fatalf("id %d %s %q, want id 4242 NOERROR [A 192.0.2.7]", r.Id, dns.RcodeToString[r.Rcode], answers(r.Answer))
			}
			if r.Authoritative {
				t.Fatal("a forwarded answer is marked authoritative")
			}
		})
	}
	t.Run("nxdomain passes through", func(t *testing.T) {
		r := query(t, "udp", addr, "missing.example.test.", dns.TypeA)
		if r.Rcode != dns.RcodeNameError {
			t.Fatalf("rcode %s, want the upstream's NXDOMAIN", dns.RcodeToString[r.Rcode])
		}
	})
	t.Run("truncated upstream reply is fetched over tcp", func(t *testing.T) {
		// A client without EDNS: the upstream's 512-byte UDP reply is
		// truncated, the server asks again over TCP, and the client gets
		// a truncated reply to retry over TCP itself.
		r := query(t, "udp", addr, "big.example.test.", dns.TypeA)
		if !r.Truncated || len(r.Answer) >= 60 {
			t.Fatalf("plain UDP client: truncated=%v with %d answers", r.Truncated, len(r.Answer))
		}
		if !slices.Contains(up.askedTCP(), "big.example.test.") {
			t.Fatalf("the server did not retry over TCP: upstream's TCP queries %q", up.askedTCP())
		}
		if r := query(t, "tcp", addr, "big.example.test.", dns.TypeA); len(r.Answer) != 60 {
			t.Fatalf("tcp: %d answers, want 60", len(r.Answer))
		}
		// With EDNS the whole answer fits one UDP reply.
		m := new(dns.Msg)
		m.SetQuestion("big.example.test.", dns.TypeA)
		m.SetEdns0(dns.DefaultMsgSize, false)
		c := &dns.Client{Net: "udp", Timeout: 10 * time.Second}
		r, _, err := c.Exchange(m, addr)
		if err != nil {
			t.Fatal(err)
		}
		if r.Truncated || len(r.Answer) != 60 {
			t.Fatalf("EDNS client: truncated=%v with %d answers, want all 60", r.Truncated, len(r.Answer))
		}
	})
	for _, name := range up.asked() {
		if dns.IsSubDomain("cluster.local.", name) {
			t.Fatalf("cluster name %s forwarded", name)
		}
	}
}

func TestUnreachableUpstreamServfail(t *testing.T) {
	dead1, dead2 := freeLoopback(t, 7), freeLoopback(t, 8)
	_, _, addr := startDNS(t, []string{dead1.String(), dead2.String()})
	for _, network := range []string{"udp", "tcp"} {
		r := query(t, network, addr, "www.example.test.", dns.TypeA)
		if r.Rcode != dns.RcodeServerFailure {
			t.Fatalf("%s: rcode %s, want SERVFAIL", network, dns.RcodeToString[r.Rcode])
		}
	}
	// Cluster names still resolve without upstreams.
	if r := query(t, "udp", addr, "nope.default.svc.cluster.local.", dns.TypeA); r.Rcode != dns.RcodeNameError {
		t.Fatalf("cluster name: rcode %s, want NXDOMAIN", dns.RcodeToString[r.Rcode])
	}
}
