package lb

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/wasmkube/wasmkube/sandbox/network/networktest"
)

// The two-node topology: one L2 segment (a bridge in a namespace of its
// own) joins the client, the node and another node.
//
//	outside (client)  out0 198.51.100.1/24
//	node              ext0 198.51.100.2/24 = node IP, tc programs here;
//	                  pod0 10.20.0.1/24, the node's pods are 10.20.0.0/24;
//	                  10.20.1.0/24 via 198.51.100.3
//	pod               eth0 10.20.0.2/24, default via 10.20.0.1
//	remote (node)     rem0 198.51.100.3/24, and its pod's 10.20.1.5/32
var (
	lanRemoteNode = netip.MustParseAddr("198.51.100.3")
	lanPodCIDR    = netip.MustParsePrefix("10.20.0.0/24")
)

// newLANTopo builds the two-node topology; the programs are not loaded yet.
// Its namespaces are newTopo's, plus the bridge's and the remote node's.
func newLANTopo(t *testing.T) (tp *topo, remote netns.NsHandle) {
	t.Helper()
	tp = &topo{outside: newNS(t), node: newNS(t), pod: newNS(t)}
	lan, rem := newNS(t), newNS(t)
	tp.pinDir = filepath.Join(BPFFS, "wk-tc-test-"+networktest.RandHex(t, 4))
	mustDo(t, "pin dir", ensurePinDir(tp.pinDir))
	t.Cleanup(func() {
		if err := detachTC(tp.pinDir, topoNodeIface); err != nil {
			t.Errorf("detach: %v", err)
		}
		if err := os.RemoveAll(tp.pinDir); err != nil {
			t.Errorf("remove pins: %v", err)
		}
	})

	hLAN := handle(t, lan)
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "br0"}}
	mustDo(t, "bridge", hLAN.LinkAdd(br))
	up(t, hLAN, "br0")
	for i, port := range []struct {
		ns   netns.NsHandle
		name string
	}{{tp.outside, "out0"}, {tp.node, topoNodeIface}, {rem, "rem0"}} {
		lanSide := fmt.Sprintf("lan%d", i)
		mustDo(t, "veth "+port.name, hLAN.LinkAdd(&netlink.Veth{
			LinkAttrs: netlink.LinkAttrs{Name: lanSide, MasterIndex: br.Index}, PeerName: port.name,
			PeerNamespace: netlink.NsFd(port.ns),
		}))
		up(t, hLAN, lanSide)
	}
	hNode := handle(t, tp.node)
	mustDo(t, "veth node-pod", hNode.LinkAdd(&netlink.Veth{
		LinkAttrs: netlink.LinkAttrs{Name: "pod0"}, PeerName: "eth0",
		PeerNamespace: netlink.NsFd(tp.pod),
	}))
	up(t, handle(t, tp.outside), "out0", "198.51.100.1/24")
	up(t, hNode, topoNodeIface, "198.51.100.2/24")
	up(t, hNode, "pod0", "10.20.0.1/24")
	hPod := handle(t, tp.pod)
	up(t, hPod, "eth0", "10.20.0.2/24")
	up(t, handle(t, rem), "rem0", "198.51.100.3/24", "10.20.1.5/32")
	route(t, hNode, "10.20.1.0/24", lanRemoteNode.String())
	route(t, hPod, "0.0.0.0/0", "10.20.0.1")
	mustDo(t, "ip_forward", inNS(t, tp.node, func() error {
		return os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0o644)
	}))
	return tp, rem
}

func TestTCClusterPolicySNAT(t *testing.T) {
	tp, remote := newLANTopo(t)
	objs := loadAttach(t, tp)
	mustDo(t, "node config", writeNodeConfig(objs.LbConfig, NodeConfig{
		NodeIP: topoNodeIP, ClusterCIDR: topoCluster, ServiceCIDR: topoServices, PodCIDR: lanPodCIDR,
	}))
	serveTCP(t, remote, hostPort(topoOtherPod, 8080), "remote")
	serveUDP(t, remote, hostPort(topoOtherPod, 5353), "remote")
	serveTCP(t, tp.pod, ":8080", "local")
	serveUDP(t, tp.pod, ":5353", "local")
	udpFrontend := func(port uint16) Frontend {
		return Frontend{Addr: topoNodeIP, Port: port, Proto: UDP, Scope: ScopeExternal}
	}
	tcPutService(t, objs, 1, nodePort(30007), Service{Backends: []Backend{{Addr: topoOtherPod, Port: 8080}}})
	tcPutService(t, objs, 2, udpFrontend(30008), Service{Backends: []Backend{{Addr: topoOtherPod, Port: 5353}}})
	tcPutService(t, objs, 3, nodePort(30009), Service{Backends: []Backend{{Addr: topoPod, Port: 8080}}})
	tcPutService(t, objs, 4, udpFrontend(30010), Service{Backends: []Backend{{Addr: topoPod, Port: 5353}}})

	// check sends a few requests on one connection to the node port and
	// wants them answered by server, which sees the node's address (snat)
	// or the client's own.
	check := func(t *testing.T, network string, port int, server string, snat bool) {
		t.Helper()
		c, err := dial(t, tp.outside, network, hostPort(topoNodeIP, port))
		mustDo(t, "connect to the node port", err)
		defer c.Close()
		for j := range 3 {
			r := request(t, c, fmt.Sprintf("%s %d", network, j))
			if r.server != server {
				t.Fatalf("answered by %s, want %s", r.server, server)
			}
			if !snat {
				if r.peer != c.LocalAddr().String() {
					t.Fatalf("%s sees %s, want the client's own %s", server, r.peer, c.LocalAddr())
				}
				continue
			}
			if r.peerAddr() != topoNodeIP.String() {
				t.Fatalf("%s sees %s, want the node %s", server, r.peer, topoNodeIP)
			}
			_, ps, _ := net.SplitHostPort(r.peer)
			if p, _ := strconv.Atoi(ps); p < 61000 {
				t.Fatalf("source NAT port %d is below 61000", p)
			}
		}
		if got := c.RemoteAddr().String(); got != hostPort(topoNodeIP, port) {
			t.Fatalf("client is connected to %s", got)
		}
	}

	t.Run("remote backend tcp", func(t *testing.T) {
		for range 3 {
			check(t, "tcp4", 30007, "remote", true)
		}
	})
	t.Run("remote backend udp", func(t *testing.T) {
		check(t, "udp4", 30008, "remote", true)
	})
	t.Run("local backend tcp", func(t *testing.T) {
		check(t, "tcp4", 30009, "local", false)
	})
	t.Run("local backend udp", func(t *testing.T) {
		check(t, "udp4", 30010, "local", false)
	})
	t.Run("no pod CIDR", func(t *testing.T) {
		// Every backend counts as local: the remote one sees the client,
		// and its replies go to it past this node (here the client drops
		// them: they come from the backend, not the node port).
		mustDo(t, "node config", writeNodeConfig(objs.LbConfig, NodeConfig{
			NodeIP: topoNodeIP, ClusterCIDR: topoCluster, ServiceCIDR: topoServices,
		}))
		tcPutService(t, objs, 5, nodePort(30011), Service{Backends: []Backend{{Addr: topoOtherPod, Port: 8080}}})
		c, err := dialWithin(t, tp.outside, "tcp4", hostPort(topoNodeIP, 30011), 2*time.Second)
		if err == nil {
			c.Close()
			t.Fatal("connected through a remote backend without source NAT")
		}
	})
}

// A node upgraded in place finds lb_config pinned by an older agent, with
// a shorter value: Open replaces it and keeps the other maps' entries.
func TestOpenReplacesIncompatiblePinnedMap(t *testing.T) {
	pinDir := filepath.Join(BPFFS, "wk-lb-test-"+networktest.RandHex(t, 4))
	t.Cleanup(func() { os.RemoveAll(pinDir) })
	d, err := Open(pinDir)
	mustDo(t, "first open", err)
	fe := Frontend{Addr: topoNodeIP, Port: 30007, Proto: TCP, Scope: ScopeExternal}
	mustDo(t, "upsert", d.Upsert(fe, Service{Backends: []Backend{{Addr: topoPod, Port: 8080}}}))
	d.Close()

	cfgPin := filepath.Join(pinDir, MapConfig)
	mustDo(t, "unpin lb_config", os.Remove(cfgPin))
	old, err := ebpf.NewMap(&ebpf.MapSpec{Name: MapConfig, Type: ebpf.Array, KeySize: 4, ValueSize: 24, MaxEntries: 1})
	mustDo(t, "old lb_config", err)
	mustDo(t, "pin old lb_config", old.Pin(cfgPin))
	old.Close()

	var logged strings.Builder
	d, err = Open(pinDir, WithLogger(slog.New(slog.NewTextHandler(&logged, nil))))
	mustDo(t, "open over the old lb_config", err)
	defer d.Close()
	if got, want := d.Map(MapConfig).ValueSize(), uint32(40); got != want {
		t.Fatalf("lb_config value size %d, want %d", got, want)
	}
	if !strings.Contains(logged.String(), MapConfig) {
		t.Fatalf("the replacement was not logged: %q", logged.String())
	}
	mustDo(t, "node config", d.SetNodeConfig(NodeConfig{NodeIP: topoNodeIP, PodCIDR: lanPodCIDR}))
	entries, err := d.List()
	mustDo(t, "list", err)
	if len(entries) != 1 || entries[0].Frontend != fe {
		t.Fatalf("entries after the replacement: %+v, want the one frontend kept", entries)
	}
	// Reopened as it is now, nothing is replaced.
	logged.Reset()
	d2, err := Open(pinDir, WithLogger(slog.New(slog.NewTextHandler(&logged, nil))))
	mustDo(t, "reopen", err)
	d2.Close()
	if logged.Len() != 0 {
		t.Fatalf("a compatible reopen logged %q", logged.String())
	}
}
