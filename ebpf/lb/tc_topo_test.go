package lb

import (
	"bufio"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/wasmkube/wasmkube/sandbox/network/networktest"
)

// The test topology, all in namespaces of its own:
//
//	outside (client)  out0 198.51.100.1/24, 10.20.1.5/32 (a pod of another node)
//	  | veth
//	node  ext0 198.51.100.2/24 = node IP, tc programs here; pod0 10.20.0.1/24
//	  | veth
//	pod   eth0 10.20.0.2/24, default via 10.20.0.1
//
// The cluster network is 10.20.0.0/16; the node routes 10.20.1.0/24 (the
// other node's pods) through the outside namespace.
var (
	topoClient    = netip.MustParseAddr("198.51.100.1")
	topoNodeIP    = netip.MustParseAddr("198.51.100.2")
	topoPod       = netip.MustParseAddr("10.20.0.2")
	topoOtherPod  = netip.MustParseAddr("10.20.1.5")
	topoCluster   = netip.MustParsePrefix("10.20.0.0/16")
	topoServices  = netip.MustParsePrefix("10.96.0.0/16")
	topoNodeIface = "ext0"
)

type topo struct {
	outside, node, pod netns.NsHandle
	pinDir             string
}

// inNS runs fn with the calling goroutine's thread in ns. Sockets fn makes
// stay in ns afterwards.
func inNS(t testing.TB, ns netns.NsHandle, fn func() error) error {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatalf("current netns: %v", err)
	}
	defer orig.Close()
	if err := netns.Set(ns); err != nil {
		t.Fatalf("enter netns: %v", err)
	}
	defer func() {
		if err := netns.Set(orig); err != nil {
			// The thread is unusable; locked, it dies with the goroutine.
			runtime.LockOSThread()
			t.Errorf("leave netns: %v", err)
		}
	}()
	return fn()
}

func newNS(t testing.TB) netns.NsHandle {
	t.Helper()
	var ns netns.NsHandle
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	ns, err = netns.New()
	if err != nil {
		t.Fatalf("new netns: %v", err)
	}
	if err := netns.Set(orig); err != nil {
		runtime.LockOSThread()
		t.Fatalf("back to original netns: %v", err)
	}
	t.Cleanup(func() { ns.Close() })
	return ns
}

// newTopo builds the namespaces and a pin directory of the test's own; the
// programs are not loaded yet.
func newTopo(t testing.TB) *topo {
	t.Helper()
	tp := &topo{outside: newNS(t), node: newNS(t), pod: newNS(t)}
	tp.pinDir = filepath.Join(BPFFS, "wk-tc-test-"+networktest.RandHex(t, 4))
	if err := ensurePinDir(tp.pinDir); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := detachTC(tp.pinDir, topoNodeIface); err != nil {
			t.Errorf("detach: %v", err)
		}
		if err := os.RemoveAll(tp.pinDir); err != nil {
			t.Errorf("remove pins: %v", err)
		}
	})

	hOut := handle(t, tp.outside)
	hNode := handle(t, tp.node)
	hPod := handle(t, tp.pod)
	mustDo(t, "veth outside-node", hOut.LinkAdd(&netlink.Veth{
		LinkAttrs: netlink.LinkAttrs{Name: "out0"}, PeerName: topoNodeIface,
		PeerNamespace: netlink.NsFd(tp.node),
	}))
	mustDo(t, "veth node-pod", hNode.LinkAdd(&netlink.Veth{
		LinkAttrs: netlink.LinkAttrs{Name: "pod0"}, PeerName: "eth0",
		PeerNamespace: netlink.NsFd(tp.pod),
	}))
	up(t, hOut, "out0", "198.51.100.1/24", "10.20.1.5/32")
	up(t, hNode, topoNodeIface, "198.51.100.2/24")
	up(t, hNode, "pod0", "10.20.0.1/24")
	up(t, hPod, "eth0", "10.20.0.2/24")
	route(t, hOut, "10.20.0.0/16", "198.51.100.2")
	route(t, hNode, "10.20.1.0/24", "198.51.100.1")
	route(t, hPod, "0.0.0.0/0", "10.20.0.1")
	mustDo(t, "ip_forward", inNS(t, tp.node, func() error {
		return os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0o644)
	}))
	return tp
}

func handle(t testing.TB, ns netns.NsHandle) *netlink.Handle {
	t.Helper()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

func up(t testing.TB, h *netlink.Handle, name string, addrs ...string) {
	t.Helper()
	lo, err := h.LinkByName("lo")
	mustDo(t, "lo", err)
	mustDo(t, "lo up", h.LinkSetUp(lo))
	l, err := h.LinkByName(name)
	mustDo(t, name, err)
	for _, a := range addrs {
		addr, err := netlink.ParseAddr(a)
		mustDo(t, a, err)
		mustDo(t, "address "+a, h.AddrAdd(l, addr))
	}
	mustDo(t, name+" up", h.LinkSetUp(l))
}

func route(t testing.TB, h *netlink.Handle, dst, via string) {
	t.Helper()
	_, d, err := net.ParseCIDR(dst)
	mustDo(t, dst, err)
	mustDo(t, "route "+dst, h.RouteAdd(&netlink.Route{Dst: d, Gw: net.ParseIP(via)}))
}

func mustDo(t testing.TB, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// serveTCP answers every line on a connection with "<name> <peer> <line>".
func serveTCP(t testing.TB, ns netns.NsHandle, addr, name string) {
	t.Helper()
	var ln net.Listener
	mustDo(t, "listen "+addr, inNS(t, ns, func() (err error) {
		ln, err = net.Listen("tcp4", addr)
		return err
	}))
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				sc := bufio.NewScanner(c)
				for sc.Scan() {
					fmt.Fprintf(c, "%s %s %s\n", name, c.RemoteAddr(), sc.Text())
				}
			}()
		}
	}()
}

// serveUDP answers every datagram with "<name> <peer> <datagram>".
func serveUDP(t testing.TB, ns netns.NsHandle, addr, name string) {
	t.Helper()
	var pc net.PacketConn
	mustDo(t, "listen udp "+addr, inNS(t, ns, func() (err error) {
		pc, err = net.ListenPacket("udp4", addr)
		return err
	}))
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(fmt.Appendf(nil, "%s %s %s", name, from, buf[:n]), from)
		}
	}()
}

// dial connects from ns; connections that are to succeed do so at once.
func dial(t testing.TB, ns netns.NsHandle, network, addr string) (net.Conn, error) {
	t.Helper()
	return dialWithin(t, ns, network, addr, 5*time.Second)
}

func dialWithin(t testing.TB, ns netns.NsHandle, network, addr string, timeout time.Duration) (net.Conn, error) {
	t.Helper()
	var c net.Conn
	err := inNS(t, ns, func() (err error) {
		c, err = net.DialTimeout(network, addr, timeout)
		return err
	})
	return c, err
}

// reply is one answer of serveTCP or serveUDP, split.
type reply struct{ server, peer, data string }

func (r reply) peerAddr() string {
	host, _, _ := net.SplitHostPort(r.peer)
	return host
}

// request sends line on c and returns the answer.
func request(t testing.TB, c net.Conn, line string) reply {
	t.Helper()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 1500)
	var got string
	if _, isUDP := c.(*net.UDPConn); isUDP {
		if _, err := c.Write([]byte(line)); err != nil {
			t.Fatalf("send: %v", err)
		}
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("receive: %v", err)
		}
		got = string(buf[:n])
	} else {
		if _, err := fmt.Fprintf(c, "%s\n", line); err != nil {
			t.Fatalf("send: %v", err)
		}
		s, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			t.Fatalf("receive: %v", err)
		}
		got = strings.TrimSuffix(s, "\n")
	}
	f := strings.SplitN(got, " ", 3)
	if len(f) != 3 {
		t.Fatalf("answer %q is not <server> <peer> <data>", got)
	}
	if f[2] != line {
		t.Fatalf("answer %q does not echo %q", got, line)
	}
	return reply{f[0], f[1], f[2]}
}
