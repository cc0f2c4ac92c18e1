package proxy

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// BenchmarkKubeProxyIptables measures what kube-proxy's iptables mode costs
// at N Services of three endpoints each, as the baseline the eBPF datapath
// is compared with: the time iptables-restore takes to load the nat table
// (load-ms), and the latency of a new connection to the last Service's
// ClusterIP from a process on the node (ns/connect, the OUTPUT-chain path
// that walks KUBE-SERVICES), next to direct connections to the same
// backends with the rules loaded (direct-ns/connect, which still walk
// KUBE-SERVICES) and before they were (norules-ns/connect). Everything happens in a throwaway network
// namespace; the host's own tables are never touched.
//
//	go test -run '^$' -bench BenchmarkKubeProxyIptables -benchtime 2000x ./ebpf/proxy/
func BenchmarkKubeProxyIptables(b *testing.B) {
	for _, n := range []int{10, 10000} {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) { benchKubeProxy(b, n) })
	}
}

var benchBackends = [3]netip.AddrPort{
	netip.MustParseAddrPort("198.51.100.1:8080"),
	netip.MustParseAddrPort("198.51.100.2:8080"),
	netip.MustParseAddrPort("198.51.100.3:8080"),
}

func benchKubeProxy(b *testing.B, n int) {
	ns := newBenchNetns(b)
	ns.run(b, "ip", "link", "set", "lo", "up")
	// A veth pair made inside the namespace stands for the node's
	// interface (this kernel has no dummy driver).
	ns.run(b, "ip", "link", "add", "wkbd0", "type", "veth", "peer", "name", "wkbd1")
	ns.run(b, "ip", "link", "set", "wkbd1", "up")
	for _, be := range benchBackends {
		ns.run(b, "ip", "addr", "add", be.Addr().String()+"/24", "dev", "wkbd0")
	}
	ns.run(b, "ip", "link", "set", "wkbd0", "up")
	// Cluster IPs need a route for connect() to reach the OUTPUT chain,
	// where DNAT then sends the connection to a local backend.
	ns.run(b, "ip", "route", "add", "198.18.0.0/15", "dev", "wkbd0")

	ns.enter(b)
	for _, be := range benchBackends {
		l, err := net.Listen("tcp", be.String())
		if err != nil {
			b.Fatalf("listening on %s in %s: %v", be, ns.name, err)
		}
		b.Cleanup(func() { l.Close() })
		go acceptAndClose(l)
	}
	connect := func(addr string) {
		c, err := net.DialTimeout("tcp", addr, 10*time.Second)
		if err != nil {
			b.Fatalf("connecting to %s: %v", addr, err)
		}
		// A reset instead of TIME_WAIT keeps ports and conntrack entries
		// from piling up over many iterations.
		_ = c.(*net.TCPConn).SetLinger(0)
		c.Close()
	}
	directConnects := func(count int) time.Duration {
		start := time.Now()
		for i := range count {
			connect(benchBackends[i%3].String())
		}
		return time.Since(start) / time.Duration(count)
	}
	const baselineConnects = 2000
	directConnects(200) // warm-up: first sockets, conntrack, caches
	bare := directConnects(baselineConnects)

	svcs := benchServices(n, benchBackends)
	rules := kubeProxyRules(svcs, netip.MustParsePrefix("198.19.0.0/16"))
	start := time.Now()
	ns.runInput(b, rules, "iptables-restore", "-w")
	load := time.Since(start)
	if out := ns.run(b, "iptables", "-w", "-t", "nat", "-S", "KUBE-SERVICES"); strings.Count(out, "\n") != n+2 {
		b.Fatalf("KUBE-SERVICES has %d lines after the load, want %d", strings.Count(out, "\n"), n+2)
	}
	target := netip.AddrPortFrom(svcs[n-1].clusterIP, svcs[n-1].servicePort).String()
	// Nothing listens on the ClusterIP: this connect succeeds only through
	// the DNAT rules. Not measured: the first may load conntrack helpers.
	connect(target)

	for b.Loop() {
		connect(target)
	}
	viaService := b.Elapsed()
	iterations := b.N
	// A direct connection walks the same KUBE-SERVICES chain without a
	// match: every new connection on the node pays for the rule count.
	direct := directConnects(baselineConnects)

	b.ReportMetric(float64(load.Microseconds())/1000, "load-ms")
	b.ReportMetric(float64(strings.Count(rules, "\n-A ")), "rules")
	b.ReportMetric(float64(viaService.Nanoseconds())/float64(iterations), "ns/connect")
	b.ReportMetric(float64(direct.Nanoseconds()), "direct-ns/connect")
	b.ReportMetric(float64(bare.Nanoseconds()), "norules-ns/connect")
}

func acceptAndClose(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		c.Close()
	}
}

// benchNetns is a network namespace made for one benchmark run.
type benchNetns struct{ name string }

func newBenchNetns(b *testing.B) *benchNetns {
	b.Helper()
	buf := make([]byte, 4)
	if _, err := rand.Read(buf); err != nil {
		b.Fatal(err)
	}
	ns := &benchNetns{name: "wkbench-" + hex.EncodeToString(buf)}
	for _, tool := range []string{"ip", "iptables", "iptables-restore"} {
		if _, err := exec.LookPath(tool); err != nil {
			b.Fatalf("%s is needed to load kube-proxy's rules (make deps installs iptables and iproute2): %v", tool, err)
		}
	}
	if out, err := exec.Command("ip", "netns", "add", ns.name).CombinedOutput(); err != nil {
		b.Fatalf("ip netns add %s: %v: %s", ns.name, err, out)
	}
	b.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", ns.name).CombinedOutput(); err != nil {
			b.Errorf("ip netns del %s: %v: %s", ns.name, err, out)
		}
	})
	return ns
}

// run runs a command inside the namespace; every iptables call goes
// through here, so none can reach the host's tables.
func (ns *benchNetns) run(b *testing.B, args ...string) string {
	b.Helper()
	return ns.runInput(b, "", args...)
}

func (ns *benchNetns) runInput(b *testing.B, input string, args ...string) string {
	b.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns.name}, args...)...)
	cmd.Stdin = strings.NewReader(input)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		b.Fatalf("in %s: %s: %v: %s", ns.name, strings.Join(args, " "), err, out.String())
	}
	return out.String()
}

// enter moves the benchmark's goroutine, locked to its thread, into the
// namespace until the benchmark ends: sockets it opens live there. When
// the way back fails the thread stays locked and dies with the goroutine.
func (ns *benchNetns) enter(b *testing.B) {
	b.Helper()
	runtime.LockOSThread()
	home, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
	if err != nil {
		runtime.UnlockOSThread()
		b.Fatalf("opening this thread's netns: %v", err)
	}
	target, err := os.Open(filepath.Join("/var/run/netns", ns.name))
	if err != nil {
		home.Close()
		runtime.UnlockOSThread()
		b.Fatalf("opening netns %s: %v", ns.name, err)
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		home.Close()
		runtime.UnlockOSThread()
		b.Fatalf("entering netns %s: %v", ns.name, err)
	}
	b.Cleanup(func() {
		defer home.Close()
		if err := unix.Setns(int(home.Fd()), unix.CLONE_NEWNET); err != nil {
			b.Errorf("returning from netns %s: %v", ns.name, err)
			return
		}
		runtime.UnlockOSThread()
	})
}
