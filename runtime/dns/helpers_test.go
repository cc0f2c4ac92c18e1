package dns

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"
)

// startDNS serves DNS on a free loopback port from a fake clientset
// holding objs, with upstreams from a resolv.conf naming nameservers,
// until the test ends.
func startDNS(t testing.TB, nameservers []string, objs ...runtime.Object) (*Server, *fake.Clientset, string) {
	t.Helper()
	cs := fake.NewClientset(objs...)
	s := New(cs, WithUpstreams(resolvConf(t, nameservers...)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, "127.0.0.1:0") }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	select {
	case <-s.Ready():
	case err := <-done:
		t.Fatalf("Serve returned before ready: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("DNS server not ready after 30s")
	}
	return s, cs, s.Addr().String()
}

func resolvConf(t testing.TB, nameservers ...string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("search default.svc.cluster.local\noptions ndots:5\n")
	for _, ns := range nameservers {
		fmt.Fprintf(&b, "nameserver %s\n", ns)
	}
	p := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// query asks addr over net ("udp" or "tcp") and fails the test on a
// transport error.
func query(t testing.TB, network, addr, name string, qtype uint16) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	c := &dns.Client{Net: network, Timeout: 10 * time.Second}
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("%s %s %s: %v", network, name, dns.TypeToString[qtype], err)
	}
	if r.Id != m.Id {
		t.Fatalf("reply id %d, query id %d", r.Id, m.Id)
	}
	return r
}

// eventually polls cond until it holds, for the informers to catch up.
func eventually(t *testing.T, what string, cond func() error) {
	t.Helper()
	var last error
	err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		last = cond()
		return last == nil, nil
	})
	if err != nil {
		t.Fatalf("%s: not reached: %v", what, last)
	}
}

// answers renders a reply's answer section as "type value" strings in
// order, e.g. "A 10.96.0.20".
func answers(rrs []dns.RR) []string {
	var out []string
	for _, rr := range rrs {
		v := strings.TrimPrefix(rr.String(), rr.Header().String())
		out = append(out, dns.TypeToString[rr.Header().Rrtype]+" "+v)
	}
	return out
}

func clusterIPService(ns, name string, ips []string, ports ...corev1.ServicePort) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       corev1.ServiceSpec{ClusterIP: ips[0], ClusterIPs: ips, Ports: ports},
	}
}

func headlessService(ns, name string, ports ...corev1.ServicePort) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, ClusterIPs: []string{corev1.ClusterIPNone}, Ports: ports},
	}
}

type ep struct {
	addr, host string
	ready      bool
}

func endpointSliceOf(ns, svc, name string, port int32, eps ...ep) *discoveryv1.EndpointSlice {
	es := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns,
			Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports: []discoveryv1.EndpointPort{
			{Name: ptr.To("http"), Protocol: ptr.To(corev1.ProtocolTCP), Port: ptr.To(port)},
		},
	}
	for _, e := range eps {
		de := discoveryv1.Endpoint{Addresses: []string{e.addr}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(e.ready)}}
		if e.host != "" {
			de.Hostname = ptr.To(e.host)
		}
		es.Endpoints = append(es.Endpoints, de)
	}
	return es
}

// upstream is a nameserver on a loopback address of its own at port 53
// (resolv.conf cannot name another port), answering A queries from a
// table and recording every name it is asked.
type upstream struct {
	addr string
	mu   sync.Mutex
	seen []string
	tcp  []string // the names asked over TCP
}

// freeLoopback picks a 127.x address with nothing on port 53, UDP or TCP.
func freeLoopback(t testing.TB, salt int) netip.Addr {
	t.Helper()
	for i := range 200 {
		n := (os.Getpid()*31 + salt*977 + i*7919) % (250 * 250)
		a := netip.AddrFrom4([4]byte{127, 53, byte(1 + n/250), byte(1 + n%250)})
		pc, err := net.ListenPacket("udp", netip.AddrPortFrom(a, 53).String())
		if err != nil {
			continue
		}
		ln, err := net.Listen("tcp", netip.AddrPortFrom(a, 53).String())
		pc.Close()
		if err != nil {
			continue
		}
		ln.Close()
		return a
	}
	t.Fatal("no free 127.53.x.y:53 address")
	return netip.Addr{}
}

func startUpstream(t testing.TB, records map[string]string) *upstream {
	t.Helper()
	u := &upstream{}
	h := dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		q := req.Question[0]
		u.mu.Lock()
		u.seen = append(u.seen, q.Name)
		if _, udp := w.RemoteAddr().(*net.UDPAddr); !udp {
			u.tcp = append(u.tcp, q.Name)
		}
		u.mu.Unlock()
		m := new(dns.Msg)
		m.SetReply(req)
		m.RecursionAvailable = true
		ip, ok := records[strings.ToLower(q.Name)]
		if !ok {
			m.Rcode = dns.RcodeNameError
		} else if q.Qtype == dns.TypeA {
			n := 1
			if strings.HasPrefix(q.Name, "big.") {
				n = 60 // more than fits a 512-byte reply
			}
			for i := range n {
				a := net.ParseIP(ip).To4()
				a = net.IPv4(a[0], a[1], a[2], a[3]+byte(i))
				m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 30}, A: a})
			}
		}
		if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
			size := dns.MinMsgSize
			if opt := req.IsEdns0(); opt != nil {
				size = int(opt.UDPSize())
			}
			m.Truncate(size)
		}
		_ = w.WriteMsg(m)
	})
	a := freeLoopback(t, len(records))
	u.addr = a.String()
	for _, network := range []string{"udp", "tcp"} {
		started := make(chan struct{})
		srv := &dns.Server{Addr: netip.AddrPortFrom(a, 53).String(), Net: network, Handler: h, NotifyStartedFunc: func() { close(started) }}
		errc := make(chan error, 1)
		go func() { errc <- srv.ListenAndServe() }()
		select {
		case <-started:
		case err := <-errc:
			t.Fatalf("upstream %s on %s: %v", network, a, err)
		}
		t.Cleanup(func() { _ = srv.Shutdown() })
	}
	return u
}

func (u *upstream) askedTCP() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.tcp...)
}

func (u *upstream) asked() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.seen...)
}
