package lb

import (
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wasmkube/wasmkube/sandbox/cgroups"
)

// TestHostOnly: a host-only frontend is translated for sockets of the
// host's network namespace, and left alone in any other, where the same
// address means something else; an ordinary frontend is translated in both.
func TestHostOnly(t *testing.T) {
	e := newEnv(t)
	d := e.open(t)
	be := tcpBackend(t, "backend")
	hostOnly, everywhere := decoy(t, TCP), decoy(t, TCP)
	for f, s := range map[Frontend]Service{
		hostOnly:   {Backends: []Backend{be}, HostOnly: true},
		everywhere: {Backends: []Backend{be}},
	} {
		if err := d.Upsert(f, s); err != nil {
			t.Fatal(err)
		}
	}
	if got := lookupEntry(t, d, hostOnly); !got.HostOnly {
		t.Errorf("List lost HostOnly: %+v", got)
	}
	backend := netip.AddrPortFrom(be.Addr, be.Port).String()
	for _, tc := range []struct {
		f     Frontend
		netns bool
		want  string
	}{
		{hostOnly, false, "backend"},
		{everywhere, false, "backend"},
		{hostOnly, true, "inner-frontend"},
		{everywhere, true, "inner-backend"},
	} {
		res := e.run(t, childOp{Kind: "tcp", Target: tc.f.target(), Direct: backend, N: 3, Netns: tc.netns})
		for _, r := range res {
			if r.Err != "" || r.Reply != tc.want {
				t.Errorf("host-only %v, own netns %v: reply %q (%s), want %q", tc.f == hostOnly, tc.netns, r.Reply, r.Err, tc.want)
			}
		}
	}
}

func lookupEntry(t *testing.T, d *Datapath, f Frontend) Entry {
	t.Helper()
	es, err := d.List()
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		if e.Frontend == f {
			return e
		}
	}
	t.Fatalf("frontend %v not listed", f)
	return Entry{}
}

// TestNodeAddrFromPods: a NodePort on a node IP (NodeAddr) is translated for
// the host's sockets and for the node's pods, tasks below the configured
// pods cgroup in namespaces of their own, but not for another namespace
// outside that cgroup (another host, whose packets tc translates), nor for
// a pod before the pods cgroup is configured. 127.0.0.1:nodePort (HostOnly)
// stays the pod's own loopback.
func TestNodeAddrFromPods(t *testing.T) {
	e := newEnv(t)
	d := e.open(t)
	be := tcpBackend(t, "backend")
	nodeIP := decoy(t, TCP)
	loopback := Frontend{Proto: TCP, Scope: ScopeSocket}
	lb := tcpServer(t, "127.0.0.1:0", "decoy")
	loopback.Addr, loopback.Port = lb.Addr, lb.Port
	for f, s := range map[Frontend]Service{
		nodeIP:   {Backends: []Backend{be}, NodeAddr: true},
		loopback: {Backends: []Backend{be}, HostOnly: true},
	} {
		if err := d.Upsert(f, s); err != nil {
			t.Fatal(err)
		}
	}
	if got := lookupEntry(t, d, nodeIP); !got.NodeAddr || got.HostOnly {
		t.Errorf("List: %+v, want NodeAddr only", got)
	}
	if err := d.Upsert(nodeIP, Service{Backends: []Backend{be}, NodeAddr: true, HostOnly: true}); err == nil {
		t.Error("a frontend both NodeAddr and HostOnly was accepted")
	}
	_, podFD := e.subCgroup(t, "node/pods/pod-a")
	_, otherFD := e.subCgroup(t, "node/outside")
	root, err := cgroups.Mountpoint()
	if err != nil {
		t.Fatal(err)
	}
	backend := netip.AddrPortFrom(be.Addr, be.Port).String()
	check := func(stage string, cgFD int, f Frontend, netns bool, want string) {
		t.Helper()
		res := e.runIn(t, cgFD, childOp{Kind: "tcp", Target: f.target(), Direct: backend, N: 3, Netns: netns})
		for _, r := range res {
			if r.Err != "" || r.Reply != want {
				t.Errorf("%s: %s, own netns %v: reply %q (%s), want %q", stage, f.target(), netns, r.Reply, r.Err, want)
			}
		}
	}

	check("no pods cgroup, pod", podFD, nodeIP, true, "inner-frontend")
	check("no pods cgroup, host", e.cgFD, nodeIP, false, "backend")

	pods := strings.TrimPrefix(filepath.Join(e.cgroup, "node/pods"), root)
	if err := d.SetNodeConfig(NodeConfig{PodsCgroup: pods}); err != nil {
		t.Fatal(err)
	}
	check("pod", podFD, nodeIP, true, "inner-backend")
	check("pod, 127.0.0.1", podFD, loopback, true, "inner-frontend")
	check("outside host", otherFD, nodeIP, true, "inner-frontend")
	check("host", e.cgFD, nodeIP, false, "backend")
	check("host, 127.0.0.1", e.cgFD, loopback, false, "backend")
	check("host-network pod", podFD, nodeIP, false, "backend")

	if err := d.SetNodeConfig(NodeConfig{PodsCgroup: pods + "-missing"}); err == nil {
		t.Error("a missing pods cgroup was accepted")
	}
}
