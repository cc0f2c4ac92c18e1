package podroutes

import (
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/wasmkube/wasmkube/internal/testcluster"
)

// TestPodToPodAcrossNodes has two nodes, each a network namespace, on one
// L2 segment (a veth pair, 192.0.2.0/24), each with a pod address in its
// own pod range. With each node's controller running, a TCP connection
// from one pod address to the other goes through, with the pod address as
// its source at the far end.
func TestPodToPodAcrossNodes(t *testing.T) {
	_, cs := testcluster.Start(t)
	a, b := newTestNS(t), newTestNS(t)
	// The segment: eth0 in a, its peer eth0 in b.
	if err := a.h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eth0"}, PeerName: "eth0",
		PeerNamespace: netlink.NsFd(int(b.ns))}); err != nil {
		t.Fatalf("segment veth: %v", err)
	}
	a.setUp(t, "eth0", "192.0.2.1/24")
	b.setUp(t, "eth0", "192.0.2.2/24")
	// Each node's "pod": an address in its pod range, where a bridge would
	// have its pods.
	a.addLink(t, "pod0", "198.51.100.1/28")
	b.addLink(t, "pod0", "198.51.100.17/28")
	createNode(t, cs, "a", "198.51.100.0/28", "192.0.2.1")
	createNode(t, cs, "b", "198.51.100.16/28", "192.0.2.2")

	dial := func() (net.Conn, error) {
		var c net.Conn
		err := a.in(func() error {
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("198.51.100.1")}, Timeout: 20 * time.Second}
			var err error
			c, err = d.Dial("tcp", "198.51.100.17:8080")
			return err
		})
		return c, err
	}
	var ln net.Listener
	if err := b.in(func() (err error) {
		ln, err = net.Listen("tcp", "198.51.100.17:8080")
		return err
	}); err != nil {
		t.Fatalf("listen in b: %v", err)
	}
	defer ln.Close()

	// No routes yet: a has none to b's pod range.
	if c, err := dial(); !errors.Is(err, syscall.ENETUNREACH) {
		if c != nil {
			c.Close()
		}
		t.Fatalf("dial before any route: got %v, want network unreachable", err)
	}

	startController(t, cs, WithNodeName("a"), WithNetlink(a.h))
	startController(t, cs, WithNodeName("b"), WithNetlink(b.h))
	a.waitRoutes(t, "a routes to b's pods", "198.51.100.16/28 via 192.0.2.2 dev eth0 proto 119")
	b.waitRoutes(t, "b routes to a's pods", "198.51.100.0/28 via 192.0.2.1 dev eth0 proto 119")

	accepted := make(chan error, 1)
	var remote net.Addr
	go func() {
		c, err := ln.Accept()
		if err != nil {
			accepted <- err
			return
		}
		defer c.Close()
		remote = c.RemoteAddr()
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		buf := make([]byte, 4)
		if _, err := io.ReadFull(c, buf); err != nil {
			accepted <- err
			return
		}
		_, err = c.Write(append([]byte("re:"), buf...))
		accepted <- err
	}()
	c, err := dial()
	if err != nil {
		t.Fatalf("dial from a's pod to b's pod: %v", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	reply := make([]byte, 7)
	if _, err := io.ReadFull(c, reply); err != nil {
		t.Fatalf("read reply: %v", err)
	}
	if err := <-accepted; err != nil {
		t.Fatalf("b's pod: %v", err)
	}
	if string(reply) != "re:ping" {
		t.Errorf("reply %q, want %q", reply, "re:ping")
	}
	if host, _, _ := net.SplitHostPort(remote.String()); host != "198.51.100.1" {
		t.Errorf("b's pod saw the connection from %s, want a's pod address 198.51.100.1", remote)
	}
}
