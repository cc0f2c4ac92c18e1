package lb

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netns"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"

	"github.com/wasmkube/wasmkube/sandbox/network/networktest"
)

// tcPutService writes a frontend and its backends straight into the maps,
// for tests of the tc programs alone.
func tcPutService(t testing.TB, objs *tcObjects, id uint32, fe Frontend, svc Service) {
	t.Helper()
	for i, b := range svc.Backends {
		v := tcBackendValue{Addr: tcBE32(b.Addr), Port: tcBE16(b.Port)}
		mustDo(t, "put backend", objs.LbBackends.Put(tcBackendKey{Id: id, Slot: uint32(i)}, &v))
	}
	k := tcSvcKey{Addr: tcBE32(fe.Addr), Port: tcBE16(fe.Port), Proto: uint8(fe.Proto), Scope: uint8(fe.Scope)}
	v := tcSvcValue{Id: id, Count: uint16(len(svc.Backends)), AffinityTimeout: uint32(svc.AffinityTimeout / time.Second)}
	mustDo(t, "put service", objs.LbServices.Put(&k, &v))
}

// loadAttach loads the programs and attaches them to the node's interface.
func loadAttach(t testing.TB, tp *topo) *tcObjects {
	t.Helper()
	objs, err := loadTC(tp.pinDir)
	mustDo(t, "load", err)
	t.Cleanup(func() { objs.Close() })
	mustDo(t, "attach", inNS(t, tp.node, func() error {
		return attachTC(objs, tp.pinDir, topoNodeIface)
	}))
	return objs
}

func nodePort(port uint16) Frontend {
	return Frontend{Addr: topoNodeIP, Port: port, Proto: TCP, Scope: ScopeExternal}
}

func hostPort(a netip.Addr, port int) string {
	return net.JoinHostPort(a.String(), strconv.Itoa(port))
}

func TestTCNodePort(t *testing.T) {
	tp := newTopo(t)
	objs := loadAttach(t, tp)
	serveTCP(t, tp.pod, ":8080", "a")
	serveTCP(t, tp.pod, ":8081", "b")
	serveUDP(t, tp.pod, ":5353", "u")
	a := Backend{Addr: topoPod, Port: 8080}
	b := Backend{Addr: topoPod, Port: 8081}
	tcPutService(t, objs, 1, nodePort(30007), Service{Backends: []Backend{a}})
	tcPutService(t, objs, 2, Frontend{Addr: topoNodeIP, Port: 30008, Proto: UDP, Scope: ScopeExternal},
		Service{Backends: []Backend{{Addr: topoPod, Port: 5353}}})
	tcPutService(t, objs, 3, nodePort(30009), Service{Backends: []Backend{a, b}})
	tcPutService(t, objs, 4, nodePort(30010), Service{Backends: []Backend{a, b}, AffinityTimeout: time.Hour})
	tcPutService(t, objs, 5, nodePort(30011), Service{})
	// A socket-scope frontend is not the tc programs' business.
	tcPutService(t, objs, 6, Frontend{Addr: topoNodeIP, Port: 30012, Proto: TCP, Scope: ScopeSocket},
		Service{Backends: []Backend{a}})

	t.Run("tcp", func(t *testing.T) {
		for i := range 3 {
			c, err := dial(t, tp.outside, "tcp4", hostPort(topoNodeIP, 30007))
			mustDo(t, "connect to the node port", err)
			for j := range 5 {
				r := request(t, c, fmt.Sprintf("conn %d request %d", i, j))
				if r.server != "a" || r.peerAddr() != topoClient.String() {
					t.Fatalf("answer from %s seeing peer %s, want a seeing the client %s", r.server, r.peer, topoClient)
				}
				if c.LocalAddr().String() != r.peer {
					t.Fatalf("pod sees %s, client is %s", r.peer, c.LocalAddr())
				}
			}
			if got := c.RemoteAddr().String(); got != hostPort(topoNodeIP, 30007) {
				t.Fatalf("client is connected to %s", got)
			}
			c.Close()
		}
	})

	t.Run("udp", func(t *testing.T) {
		c, err := dial(t, tp.outside, "udp4", hostPort(topoNodeIP, 30008))
		mustDo(t, "dial udp", err)
		defer c.Close()
		for j := range 3 {
			r := request(t, c, fmt.Sprintf("datagram %d", j))
			if r.server != "u" || r.peer != c.LocalAddr().String() {
				t.Fatalf("answer from %s seeing %s, want u seeing %s", r.server, r.peer, c.LocalAddr())
			}
		}
	})

	t.Run("both backends", func(t *testing.T) {
		seen := connectMany(t, tp, 30009, 30)
		if seen["a"] == 0 || seen["b"] == 0 {
			t.Fatalf("backends chosen over 30 connections: %v, want both", seen)
		}
	})

	t.Run("affinity", func(t *testing.T) {
		seen := connectMany(t, tp, 30010, 20)
		if len(seen) != 1 {
			t.Fatalf("backends chosen with client IP affinity: %v, want one", seen)
		}
		var n int
		it := objs.LbAffinity.Iterate()
		var k tcAffinityKey
		var v tcAffinityValue
		for it.Next(&k, &v) {
			if k.Id == 4 {
				n++
				if k.Client != uint64(tcBE32(topoClient)) {
					t.Errorf("affinity client %#x, want the client's address", k.Client)
				}
			}
		}
		if n != 1 {
			t.Fatalf("%d affinity entries for the frontend, want 1", n)
		}
	})

	t.Run("no backends", func(t *testing.T) {
		// Refused (TestTCRefuseWithoutBackends looks closer).
		c, err := dialWithin(t, tp.outside, "tcp4", hostPort(topoNodeIP, 30011), 5*time.Second)
		if err == nil {
			c.Close()
			t.Fatal("connected to a frontend without backends")
		}
	})

	t.Run("socket scope ignored", func(t *testing.T) {
		// Nothing listens on the node itself: refused, not sent to the pod.
		c, err := dial(t, tp.outside, "tcp4", hostPort(topoNodeIP, 30012))
		if err == nil {
			c.Close()
			t.Fatal("a socket-scope frontend answered from outside")
		}
	})
}

// connectMany makes n connections to a node port and counts the backends
// that answered.
func connectMany(t *testing.T, tp *topo, port uint16, n int) map[string]int {
	t.Helper()
	seen := map[string]int{}
	for i := range n {
		c, err := dial(t, tp.outside, "tcp4", hostPort(topoNodeIP, int(port)))
		mustDo(t, "connect", err)
		seen[request(t, c, strconv.Itoa(i)).server]++
		c.Close()
	}
	return seen
}

func TestTCMasquerade(t *testing.T) {
	tp := newTopo(t)
	objs := loadAttach(t, tp)
	serveTCP(t, tp.outside, ":9000", "out")
	serveUDP(t, tp.outside, ":9001", "out")
	// Bound to it, so that replies come from the other pod's address.
	serveUDP(t, tp.outside, hostPort(topoOtherPod, 9002), "out")

	check := func(t *testing.T, network, addr string, wantPeer netip.Addr, masqueraded bool) {
		t.Helper()
		c, err := dial(t, tp.pod, network, addr)
		mustDo(t, "connect from the pod", err)
		defer c.Close()
		for j := range 3 {
			r := request(t, c, fmt.Sprintf("%s %d", network, j))
			if r.peerAddr() != wantPeer.String() {
				t.Fatalf("%s to %s seen from %s, want %s", network, addr, r.peer, wantPeer)
			}
			_, port, _ := net.SplitHostPort(r.peer)
			p, _ := strconv.Atoi(port)
			if masqueraded && p < 61000 {
				t.Fatalf("masqueraded port %d is below 61000", p)
			}
			if !masqueraded && r.peer != c.LocalAddr().String() {
				t.Fatalf("peer %s, want the pod's own %s", r.peer, c.LocalAddr())
			}
		}
	}

	t.Run("no node config", func(t *testing.T) {
		check(t, "tcp4", hostPort(topoClient, 9000), topoPod, false)
		check(t, "udp4", hostPort(topoClient, 9001), topoPod, false)
	})

	mustDo(t, "node config", writeNodeConfig(objs.LbConfig, NodeConfig{
		NodeIP: topoNodeIP, ClusterCIDR: topoCluster, ServiceCIDR: topoServices,
	}))

	t.Run("tcp", func(t *testing.T) {
		for range 3 {
			check(t, "tcp4", hostPort(topoClient, 9000), topoNodeIP, true)
		}
	})
	t.Run("udp", func(t *testing.T) {
		check(t, "udp4", hostPort(topoClient, 9001), topoNodeIP, true)
	})
	t.Run("cluster network", func(t *testing.T) {
		check(t, "tcp4", hostPort(topoOtherPod, 9000), topoPod, false)
		check(t, "udp4", hostPort(topoOtherPod, 9002), topoPod, false)
	})
	t.Run("config cleared", func(t *testing.T) {
		mustDo(t, "node config", writeNodeConfig(objs.LbConfig, NodeConfig{}))
		check(t, "tcp4", hostPort(topoClient, 9000), topoPod, false)
	})
}

// tcAttached counts the programs on the node interface's TCX hooks.
func tcAttached(t *testing.T, tp *topo) (ingress, egress []link.AttachedProgram) {
	t.Helper()
	mustDo(t, "query", inNS(t, tp.node, func() error {
		iface, err := net.InterfaceByName(topoNodeIface)
		if err != nil {
			return err
		}
		for _, q := range []struct {
			attach ebpf.AttachType
			out    *[]link.AttachedProgram
		}{{ebpf.AttachTCXIngress, &ingress}, {ebpf.AttachTCXEgress, &egress}} {
			res, err := link.QueryPrograms(link.QueryOptions{Target: iface.Index, Attach: q.attach})
			if err != nil {
				return err
			}
			*q.out = res.Programs
		}
		return nil
	}))
	return ingress, egress
}

func TestTCReattachAndDetach(t *testing.T) {
	tp := newTopo(t)
	objs := loadAttach(t, tp)
	serveTCP(t, tp.pod, ":8080", "a")
	tcPutService(t, objs, 1, nodePort(30007), Service{Backends: []Backend{{Addr: topoPod, Port: 8080}}})

	c, err := dial(t, tp.outside, "tcp4", hostPort(topoNodeIP, 30007))
	mustDo(t, "connect", err)
	defer c.Close()
	request(t, c, "before")

	// An agent restart: a second load takes over the pinned maps and links.
	objs2, err := loadTC(tp.pinDir)
	mustDo(t, "second load", err)
	t.Cleanup(func() { objs2.Close() })
	for range 2 {
		mustDo(t, "attach again", inNS(t, tp.node, func() error {
			return attachTC(objs2, tp.pinDir, topoNodeIface)
		}))
	}
	objs.Close()
	in, eg := tcAttached(t, tp)
	if len(in) != 1 || len(eg) != 1 {
		t.Fatalf("after re-attach: %d ingress and %d egress programs, want 1 each", len(in), len(eg))
	}
	info, err := objs2.TcIngress.Info()
	mustDo(t, "program info", err)
	if id, _ := info.ID(); in[0].ID != id {
		t.Fatalf("ingress runs program %d, want the new load's %d", in[0].ID, id)
	}
	request(t, c, "after restart, same connection")
	c2, err := dial(t, tp.outside, "tcp4", hostPort(topoNodeIP, 30007))
	mustDo(t, "connect after restart", err)
	request(t, c2, "after restart, new connection")
	c2.Close()

	mustDo(t, "detach", detachTC(tp.pinDir, topoNodeIface))
	in, eg = tcAttached(t, tp)
	if len(in) != 0 || len(eg) != 0 {
		t.Fatalf("after detach: %d ingress and %d egress programs, want none", len(in), len(eg))
	}
	if c3, err := dial(t, tp.outside, "tcp4", hostPort(topoNodeIP, 30007)); err == nil {
		c3.Close()
		t.Fatal("the node port still answers after detach")
	}
	mustDo(t, "detach twice", detachTC(tp.pinDir, topoNodeIface))
}

func TestTCMasqueradePing(t *testing.T) {
	tp := newTopo(t)
	objs := loadAttach(t, tp)
	mustDo(t, "node config", writeNodeConfig(objs.LbConfig, NodeConfig{
		NodeIP: topoNodeIP, ClusterCIDR: topoCluster, ServiceCIDR: topoServices,
	}))
	// Raw sockets see every ICMP message of their namespace: the outside
	// one shows the request as it arrived, the pod's the reply.
	listen := func(ns netns.NsHandle) *icmp.PacketConn {
		var c *icmp.PacketConn
		mustDo(t, "icmp socket", inNS(t, ns, func() (err error) {
			c, err = icmp.ListenPacket("ip4:icmp", "0.0.0.0")
			return err
		}))
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(5 * time.Second))
		return c
	}
	outside, pod := listen(tp.outside), listen(tp.pod)

	const id = 0x1234
	payload := []byte("wasmkube masquerade " + strconv.FormatInt(time.Now().UnixNano(), 36))
	req, err := (&icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: id, Seq: 7, Data: payload}}).Marshal(nil)
	mustDo(t, "marshal", err)
	if _, err := pod.WriteTo(req, &net.IPAddr{IP: topoClient.AsSlice()}); err != nil {
		t.Fatalf("send echo request: %v", err)
	}

	// read returns the first echo message of type typ carrying payload.
	read := func(c *icmp.PacketConn, typ ipv4.ICMPType) (*icmp.Echo, net.Addr) {
		buf := make([]byte, 1500)
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				t.Fatalf("waiting for %v: %v", typ, err)
			}
			m, err := icmp.ParseMessage(1, buf[:n])
			if err != nil || m.Type != typ {
				continue
			}
			if e, ok := m.Body.(*icmp.Echo); ok && string(e.Data) == string(payload) {
				if !icmpChecksumOK(buf[:n]) {
					t.Fatalf("%v from %s has a bad checksum", typ, from)
				}
				return e, from
			}
		}
	}
	e, from := read(outside, ipv4.ICMPTypeEcho)
	if from.String() != topoNodeIP.String() || e.ID < 61000 {
		t.Fatalf("echo request arrived from %s with id %d, want the node %s and an id from 61000", from, e.ID, topoNodeIP)
	}
	e, from = read(pod, ipv4.ICMPTypeEchoReply)
	if from.String() != topoClient.String() || e.ID != id || e.Seq != 7 {
		t.Fatalf("echo reply from %s id %d seq %d, want from %s id %d seq 7", from, e.ID, e.Seq, topoClient, id)
	}
}

// icmpChecksumOK checks an ICMP message's checksum, which raw sockets do not.
func icmpChecksumOK(b []byte) bool {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return sum == 0xffff
}

func TestTCLoadReplacesIncompatibleFlowTable(t *testing.T) {
	pinDir := filepath.Join(BPFFS, "wk-tc-test-"+networktest.RandHex(t, 4))
	mustDo(t, "pin dir", ensurePinDir(pinDir))
	t.Cleanup(func() { os.RemoveAll(pinDir) })
	// An older layout of tc_ct_fwd: a different value size.
	old, err := ebpf.NewMap(&ebpf.MapSpec{Name: "tc_ct_fwd", Type: ebpf.LRUHash, KeySize: 16, ValueSize: 4, MaxEntries: 16})
	mustDo(t, "old map", err)
	mustDo(t, "pin old map", old.Pin(filepath.Join(pinDir, "tc_ct_fwd")))
	old.Close()

	objs, err := loadTC(pinDir)
	mustDo(t, "load over the old flow table", err)
	defer objs.Close()
	if got := objs.TcCtFwd.ValueSize(); got != 8 {
		t.Fatalf("tc_ct_fwd value size %d, want the current 8", got)
	}
}
