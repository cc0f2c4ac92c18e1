package wasisock_test

import (
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"

	"github.com/wasmkube/wasmkube/runtime/wasm/wasisock"
)

// dnsAddr is a loopback address of its own, so that the test's server can
// take port 53, the port resolv.conf nameservers are asked on.
const dnsAddr = "127.83.41.7"

// TestGuestResolvesWithResolvConf gives the table a pod-style resolv.conf
// (a nameserver, a search list, ndots:5) and checks that a short name the
// guest resolves goes through the search list to that nameserver.
func TestGuestResolvesWithResolvConf(t *testing.T) {
	pc, err := net.ListenPacket("udp4", dnsAddr+":53")
	if err != nil {
		t.Fatalf("listen on %s:53 for the test's DNS server (tests run as root): %v", dnsAddr, err)
	}
	var mu sync.Mutex
	var asked []string
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		q := req.Question[0]
		mu.Lock()
		asked = append(asked, dns.TypeToString[q.Qtype]+" "+q.Name)
		mu.Unlock()
		m := new(dns.Msg)
		m.SetReply(req)
		switch {
		case q.Name != "backend.ns1.svc.cluster.local.":
			m.Rcode = dns.RcodeNameError
		case q.Qtype == dns.TypeA:
			rr, err := dns.NewRR(q.Name + " 30 IN A 10.96.0.10")
			if err != nil {
				t.Error(err)
			}
			m.Answer = append(m.Answer, rr)
		}
		_ = w.WriteMsg(m)
	})}
	go func() { _ = srv.ActivateAndServe() }()
	defer srv.Shutdown()

	conf := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(conf, []byte("# pod DNS\nsearch other.example ns1.svc.cluster.local\nnameserver "+dnsAddr+"\noptions ndots:5 timeout:2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := runGuest(t, []wasisock.TableOption{wasisock.WithResolvConf(conf)}, "resolve", "backend")
	if strings.TrimSpace(out) != "10.96.0.10" {
		t.Fatalf("guest resolved backend to %q, want 10.96.0.10", out)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Contains(asked, "A backend.other.example.") || !slices.Contains(asked, "A backend.ns1.svc.cluster.local.") {
		t.Fatalf("nameserver was asked %v, want the search list tried", asked)
	}
	if slices.Contains(asked, "A backend.") {
		t.Fatalf("nameserver was asked for the bare name although a search domain answered: %v", asked)
	}
}

func TestWithResolvConfRejectsFileWithoutNameserver(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(conf, []byte("search a.example\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := wasisock.NewTableWithOptions(nil, wasisock.WithResolvConf(conf)); err == nil || !strings.Contains(err.Error(), "no nameserver") {
		t.Fatalf("NewTableWithOptions with a resolv.conf without nameserver: %v, want a 'no nameserver' error", err)
	}
	if _, err := wasisock.NewTableWithOptions(nil, wasisock.WithResolvConf(filepath.Join(t.TempDir(), "missing"))); err == nil {
		t.Fatal("NewTableWithOptions with a missing resolv.conf succeeded")
	}
}

// TestGuestResolvesFromHostsFile: the pod's hosts file answers before any
// nameserver, which here is one nobody answers at.
func TestGuestResolvesFromHostsFile(t *testing.T) {
	dir := t.TempDir()
	hosts, conf := filepath.Join(dir, "hosts"), filepath.Join(dir, "resolv.conf")
	if err := os.WriteFile(hosts, []byte("127.0.0.1 localhost\n# the pod\n10.244.7.9\tweb-0 web-0.web.ns1.svc.cluster.local\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(conf, []byte("nameserver 127.83.41.99\noptions ndots:5\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	opts := []wasisock.TableOption{wasisock.WithResolvConf(conf), wasisock.WithHostsFile(hosts)}
	for name, want := range map[string]string{"web-0": "10.244.7.9", "WEB-0.web.ns1.svc.cluster.local.": "10.244.7.9", "localhost": "127.0.0.1"} {
		if out := runGuest(t, opts, "resolve", name); strings.TrimSpace(out) != want {
			t.Errorf("guest resolved %s to %q, want %s", name, out, want)
		}
	}
}
