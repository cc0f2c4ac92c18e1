package dns

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// fixture is a small cluster: a ClusterIP Service with named ports, a
// headless StatefulSet-style Service, one that publishes not-ready
// addresses, and an ExternalName Service.
func fixture() []runtime.Object {
	web := clusterIPService("default", "web", []string{"10.96.0.20"},
		corev1.ServicePort{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP},
		corev1.ServicePort{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP})
	db := headlessService("data", "db", corev1.ServicePort{Name: "http", Port: 5432, Protocol: corev1.ProtocolTCP})
	loose := headlessService("data", "loose")
	loose.Spec.PublishNotReadyAddresses = true
	ext := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "ext", Namespace: "default"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "www.example.test"}}
	inner := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "alias", Namespace: "default"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "web.default.svc.cluster.local"}}
	return []runtime.Object{web, db, loose, ext, inner,
		endpointSliceOf("data", "db", "db-abc", 5432,
			ep{addr: "10.244.0.5", host: "db-0", ready: true},
			ep{addr: "10.244.0.6", host: "db-1", ready: true},
			ep{addr: "10.244.0.7", ready: true},
			ep{addr: "10.244.0.8", host: "db-3", ready: false}),
		endpointSliceOf("data", "loose", "loose-1", 80,
			ep{addr: "10.244.1.1", ready: true}, ep{addr: "10.244.1.2", ready: false}),
	}
}

type want struct {
	rcode   int
	answers []string // sorted
	extra   []string // sorted; nil means not checked
}

func check(t *testing.T, r *dns.Msg, w want) {
	t.Helper()
	got := answers(r.Answer)
	slices.Sort(got)
	slices.Sort(w.answers)
	if r.Rcode != w.rcode || !slices.Equal(got, w.answers) {
		t.Fatalf("got %s %q, want %s %q", dns.RcodeToString[r.Rcode], got, dns.RcodeToString[w.rcode], w.answers)
	}
	if w.extra != nil {
		ex := answers(r.Extra)
		slices.Sort(ex)
		slices.Sort(w.extra)
		if !slices.Equal(ex, w.extra) {
			t.Fatalf("additional %q, want %q", ex, w.extra)
		}
	}
	if len(r.Answer) == 0 {
		// NXDOMAIN and NODATA carry the zone's SOA for negative caching.
		if len(r.Ns) != 1 || r.Ns[0].Header().Rrtype != dns.TypeSOA || r.Ns[0].Header().Name != "cluster.local." {
			t.Fatalf("negative answer without the zone's SOA: %v", r.Ns)
		}
	}
	if !r.Authoritative {
		t.Fatal("cluster answer not authoritative")
	}
}

func TestClusterRecords(t *testing.T) {
	up := startUpstream(t, map[string]string{"www.example.test.": "192.0.2.7"})
	_, _, addr := startDNS(t, []string{up.addr}, fixture()...)

	cases := []struct {
		name  string
		qtype uint16
		want  want
	}{
		{"web.default.svc.cluster.local.", dns.TypeA, want{answers: []string{"A 10.96.0.20"}}},
		{"WEB.Default.SVC.Cluster.Local.", dns.TypeA, want{answers: []string{"A 10.96.0.20"}}},
		{"web.default.svc.cluster.local.", dns.TypeAAAA, want{}},
		{"web.default.svc.cluster.local.", dns.TypeTXT, want{}},
		{"nope.default.svc.cluster.local.", dns.TypeA, want{rcode: dns.RcodeNameError}},
		{"web.nons.svc.cluster.local.", dns.TypeA, want{rcode: dns.RcodeNameError}},
		{"default.svc.cluster.local.", dns.TypeA, want{}},
		{"nons.svc.cluster.local.", dns.TypeA, want{rcode: dns.RcodeNameError}},
		{"svc.cluster.local.", dns.TypeA, want{}},
		{"cluster.local.", dns.TypeA, want{}},
		{"x.y.z.cluster.local.", dns.TypeA, want{rcode: dns.RcodeNameError}},
		{"a.web.default.svc.cluster.local.", dns.TypeA, want{rcode: dns.RcodeNameError}},

		{"_http._tcp.web.default.svc.cluster.local.", dns.TypeSRV, want{
			answers: []string{"SRV 0 100 80 web.default.svc.cluster.local."},
			extra:   []string{"A 10.96.0.20"}}},
		{"_dns._udp.web.default.svc.cluster.local.", dns.TypeSRV, want{
			answers: []string{"SRV 0 100 53 web.default.svc.cluster.local."}}},
		{"_http._udp.web.default.svc.cluster.local.", dns.TypeSRV, want{rcode: dns.RcodeNameError}},
		{"_http._tcp.web.default.svc.cluster.local.", dns.TypeA, want{}},
		{"_tcp.web.default.svc.cluster.local.", dns.TypeSRV, want{}},

		// Headless: ready endpoints only, by hostname or dashed address.
		{"db.data.svc.cluster.local.", dns.TypeA, want{answers: []string{"A 10.244.0.5", "A 10.244.0.6", "A 10.244.0.7"}}},
		{"db-0.db.data.svc.cluster.local.", dns.TypeA, want{answers: []string{"A 10.244.0.5"}}},
		{"db-1.db.data.svc.cluster.local.", dns.TypeAAAA, want{}},
		{"10-244-0-7.db.data.svc.cluster.local.", dns.TypeA, want{answers: []string{"A 10.244.0.7"}}},
		{"db-3.db.data.svc.cluster.local.", dns.TypeA, want{rcode: dns.RcodeNameError}},
		{"_http._tcp.db.data.svc.cluster.local.", dns.TypeSRV, want{
			answers: []string{
				"SRV 0 33 5432 10-244-0-7.db.data.svc.cluster.local.",
				"SRV 0 33 5432 db-0.db.data.svc.cluster.local.",
				"SRV 0 33 5432 db-1.db.data.svc.cluster.local.",
			},
			extra: []string{"A 10.244.0.5", "A 10.244.0.6", "A 10.244.0.7"}}},
		{"loose.data.svc.cluster.local.", dns.TypeA, want{answers: []string{"A 10.244.1.1", "A 10.244.1.2"}}},

		{"10-244-3-9.default.pod.cluster.local.", dns.TypeA, want{answers: []string{"A 10.244.3.9"}}},
		{"10-244-3-9.any.pod.cluster.local.", dns.TypeAAAA, want{}},
		{"not-an-ip.default.pod.cluster.local.", dns.TypeA, want{rcode: dns.RcodeNameError}},

		{"ext.default.svc.cluster.local.", dns.TypeCNAME, want{answers: []string{"CNAME www.example.test."}}},
		{"ext.default.svc.cluster.local.", dns.TypeA, want{answers: []string{"A 192.0.2.7", "CNAME www.example.test."}}},
		{"alias.default.svc.cluster.local.", dns.TypeA, want{answers: []string{"A 10.96.0.20", "CNAME web.default.svc.cluster.local."}}},

		{"20.0.96.10.in-addr.arpa.", dns.TypePTR, want{answers: []string{"PTR web.default.svc.cluster.local."}}},
		{"5.0.244.10.in-addr.arpa.", dns.TypePTR, want{answers: []string{"PTR db-0.db.data.svc.cluster.local."}}},
		{"7.0.244.10.in-addr.arpa.", dns.TypePTR, want{answers: []string{"PTR 10-244-0-7.db.data.svc.cluster.local."}}},
		{"cluster.local.", dns.TypeSOA, want{answers: []string{"SOA ns.dns.cluster.local. hostmaster.cluster.local."}}},
	}
	for _, network := range []string{"udp", "tcp"} {
		for _, c := range cases {
			t.Run(fmt.Sprintf("%s/%s/%s", network, c.name, dns.TypeToString[c.qtype]), func(t *testing.T) {
				r := query(t, network, addr, c.name, c.qtype)
				if c.qtype == dns.TypeSOA {
					// Compare the SOA by its names; the serial varies.
					for i, rr := range r.Answer {
						if soa, ok := rr.(*dns.SOA); ok {
							r.Answer[i] = &dns.SOA{Hdr: soa.Hdr, Ns: soa.Ns, Mbox: soa.Mbox}
						}
					}
					c.want.answers = []string{"SOA ns.dns.cluster.local. hostmaster.cluster.local. 0 0 0 0 0"}
				}
				check(t, r, c.want)
			})
		}
	}
	for _, name := range up.asked() {
		if name != "www.example.test." {
			t.Errorf("upstream was asked %q: only the ExternalName target may leave the cluster", name)
		}
	}
	// The unknown reverse name of an address outside the cluster goes to
	// the upstream, which does not know it either.
	if r := query(t, "udp", addr, "9.2.0.192.in-addr.arpa.", dns.TypePTR); r.Rcode != dns.RcodeNameError || r.Authoritative {
		t.Fatalf("foreign PTR: %s authoritative=%v, want the upstream's NXDOMAIN", dns.RcodeToString[r.Rcode], r.Authoritative)
	}
	if got := up.asked(); !slices.Contains(got, "9.2.0.192.in-addr.arpa.") {
		t.Fatalf("foreign PTR not forwarded: upstream saw %q", got)
	}
}

// TestUpdates follows Services and EndpointSlices through create, change
// and delete.
func TestUpdates(t *testing.T) {
	_, cs, addr := startDNS(t, nil)
	ctx := context.Background()
	expect := func(what, name string, qtype uint16, w want) {
		t.Helper()
		eventually(t, what, func() error {
			r := query(t, "udp", addr, name, qtype)
			got := answers(r.Answer)
			slices.Sort(got)
			if r.Rcode != w.rcode || !slices.Equal(got, w.answers) {
				return fmt.Errorf("%s %q", dns.RcodeToString[r.Rcode], got)
			}
			return nil
		})
	}
	svcs := cs.CoreV1().Services("apps")
	expect("before create", "api.apps.svc.cluster.local.", dns.TypeA, want{rcode: dns.RcodeNameError})
	svc, err := svcs.Create(ctx, clusterIPService("apps", "api", []string{"10.96.1.1"}, corev1.ServicePort{Name: "grpc", Port: 9000, Protocol: corev1.ProtocolTCP}), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	expect("created", "api.apps.svc.cluster.local.", dns.TypeA, want{answers: []string{"A 10.96.1.1"}})
	expect("namespace exists", "apps.svc.cluster.local.", dns.TypeA, want{})

	svc.Spec.Ports[0].Name = "rpc"
	svc.Spec.ClusterIP, svc.Spec.ClusterIPs = "10.96.1.2", []string{"10.96.1.2"}
	if _, err := svcs.Update(ctx, svc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	expect("changed address", "api.apps.svc.cluster.local.", dns.TypeA, want{answers: []string{"A 10.96.1.2"}})
	expect("renamed port", "_rpc._tcp.api.apps.svc.cluster.local.", dns.TypeSRV, want{answers: []string{"SRV 0 100 9000 api.apps.svc.cluster.local."}})
	expect("old port gone", "_grpc._tcp.api.apps.svc.cluster.local.", dns.TypeSRV, want{rcode: dns.RcodeNameError})
	expect("new PTR", "2.1.96.10.in-addr.arpa.", dns.TypePTR, want{answers: []string{"PTR api.apps.svc.cluster.local."}})

	// Headless: endpoints come and go with their slice.
	if _, err := svcs.Create(ctx, headlessService("apps", "peers"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	expect("headless without endpoints", "peers.apps.svc.cluster.local.", dns.TypeA, want{})
	es := endpointSliceOf("apps", "peers", "peers-1", 80, ep{addr: "10.244.2.1", host: "p-0", ready: true})
	slicesClient := cs.DiscoveryV1().EndpointSlices("apps")
	if _, err := slicesClient.Create(ctx, es, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	expect("endpoint added", "p-0.peers.apps.svc.cluster.local.", dns.TypeA, want{answers: []string{"A 10.244.2.1"}})
	es.Endpoints[0].Conditions.Ready = new(bool)
	if _, err := slicesClient.Update(ctx, es, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	expect("endpoint not ready", "peers.apps.svc.cluster.local.", dns.TypeA, want{})
	if err := slicesClient.Delete(ctx, es.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	expect("slice deleted", "p-0.peers.apps.svc.cluster.local.", dns.TypeA, want{rcode: dns.RcodeNameError})

	if err := svcs.Delete(ctx, "api", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	expect("deleted", "api.apps.svc.cluster.local.", dns.TypeA, want{rcode: dns.RcodeNameError})
	if err := svcs.Delete(ctx, "peers", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	expect("namespace empty", "apps.svc.cluster.local.", dns.TypeA, want{rcode: dns.RcodeNameError})
	// The PTR of a deleted Service goes to the upstream, of which there is
	// none here.
	expect("PTR gone", "2.1.96.10.in-addr.arpa.", dns.TypePTR, want{rcode: dns.RcodeServerFailure})
}

func TestMalformedQueries(t *testing.T) {
	_, _, addr := startDNS(t, nil)
	c := &dns.Client{Net: "udp", Timeout: 10 * time.Second}
	exchange := func(m *dns.Msg) *dns.Msg {
		t.Helper()
		r, _, err := c.Exchange(m, addr)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	noQuestion := &dns.Msg{MsgHdr: dns.MsgHdr{Id: dns.Id(), Opcode: dns.OpcodeQuery}}
	if r := exchange(noQuestion); r.Rcode != dns.RcodeFormatError {
		t.Errorf("no question: %s, want FORMERR", dns.RcodeToString[r.Rcode])
	}
	notify := new(dns.Msg)
	notify.SetNotify("cluster.local.")
	if r := exchange(notify); r.Rcode != dns.RcodeNotImplemented {
		t.Errorf("NOTIFY: %s, want NOTIMP", dns.RcodeToString[r.Rcode])
	}
	chaos := new(dns.Msg)
	chaos.SetQuestion("web.default.svc.cluster.local.", dns.TypeA)
	chaos.Question[0].Qclass = dns.ClassCHAOS
	if r := exchange(chaos); r.Rcode != dns.RcodeRefused {
		t.Errorf("CHAOS class: %s, want REFUSED", dns.RcodeToString[r.Rcode])
	}
	// The server still answers afterwards.
	if r := query(t, "udp", addr, "nope.default.svc.cluster.local.", dns.TypeA); r.Rcode != dns.RcodeNameError {
		t.Errorf("after malformed queries: %s", dns.RcodeToString[r.Rcode])
	}
}
