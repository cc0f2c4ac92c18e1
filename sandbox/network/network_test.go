package network

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wasmkube/wasmkube/sandbox/network/networktest"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/wasmkube/wasmkube/sandbox/ipam"
)

func requireGone(t *testing.T, what string, link string) {
	t.Helper()
	_, err := netlink.LinkByName(link)
	var notFound netlink.LinkNotFoundError
	if !errors.As(err, &notFound) {
		t.Errorf("%s %s still exists (err=%v)", what, link, err)
	}
}

func mounted(t *testing.T, path string) bool {
	t.Helper()
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && f[4] == path {
			return true
		}
	}
	return false
}

func TestTwoSandboxesOnABridge(t *testing.T) {
	suffix := networktest.RandHex(t, 3)
	bridge := "wkt" + suffix
	netnsDir := filepath.Join(t.TempDir(), "netns")
	stateDir := t.TempDir()
	cidr := networktest.FreeSubnet(t)

	alloc, err := ipam.New(stateDir, cidr)
	if err != nil {
		t.Fatal(err)
	}
	gw := alloc.Gateway()
	t.Cleanup(func() {
		if err := DeleteBridge(bridge); err != nil {
			t.Errorf("cleanup bridge: %v", err)
		}
	})
	if err := EnsureBridge(bridge, gw); err != nil {
		t.Fatal(err)
	}
	if err := EnsureBridge(bridge, gw); err != nil {
		t.Fatalf("EnsureBridge is not idempotent: %v", err)
	}

	podA, podB := "wkt-"+suffix+"-a", "wkt-"+suffix+"-b"
	ipA, err := alloc.Allocate(podA)
	if err != nil {
		t.Fatal(err)
	}
	// The second pod's address comes from a fresh allocator over the same
	// directory, as after an agent restart.
	alloc2, err := ipam.New(stateDir, cidr)
	if err != nil {
		t.Fatal(err)
	}
	ipB, err := alloc2.Allocate(podB)
	if err != nil {
		t.Fatal(err)
	}
	if ipA.IP.Equal(ipB.IP) {
		t.Fatalf("both pods got %s", ipA.IP)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sandboxes := map[string]*Netns{}
	for _, p := range []struct {
		id string
		ip net.IPNet
	}{{podA, ipA}, {podB, ipB}} {
		t.Cleanup(func() {
			if err := Teardown(netnsDir, p.id); err != nil {
				t.Errorf("cleanup %s: %v", p.id, err)
			}
		})
		n, err := Setup(ctx, Config{PodID: p.id, NetnsDir: netnsDir, Bridge: bridge, IP: p.ip, Gateway: gw.IP})
		if err != nil {
			t.Fatal(err)
		}
		if n.Path != Path(netnsDir, p.id) || len(n.HostVeth) > 15 {
			t.Fatalf("unexpected sandbox %+v", n)
		}
		sandboxes[p.id] = n
		checkPodSide(t, n, gw.IP)
		host, err := netlink.LinkByName(n.HostVeth)
		if err != nil {
			t.Fatal(err)
		}
		br, _ := netlink.LinkByName(bridge)
		if host.Attrs().MasterIndex != br.Attrs().Index {
			t.Errorf("%s is not a port of %s", n.HostVeth, bridge)
		}
	}
	a, b := sandboxes[podA], sandboxes[podB]

	if _, err := Setup(ctx, Config{PodID: podA, NetnsDir: netnsDir, Bridge: bridge, IP: ipA, Gateway: gw.IP}); !errors.Is(err, os.ErrExist) {
		t.Fatalf("second Setup of a live pod: err = %v, want ErrExist", err)
	}
	checkPodSide(t, a, gw.IP) // the refused Setup must not have torn A down

	// A server inside A, reached from inside B at A's pod IP.
	lnc := make(chan net.Listener, 1)
	errc := make(chan error, 1)
	go func() {
		errc <- a.Do(func() error {
			ln, err := net.Listen("tcp4", net.JoinHostPort(a.IP.IP.String(), "0"))
			if err != nil {
				return err
			}
			lnc <- ln
			return nil
		})
	}()
	if err := <-errc; err != nil {
		t.Fatalf("listen in A: %v", err)
	}
	ln := <-lnc
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		line, _ := bufio.NewReader(c).ReadString('\n')
		fmt.Fprintf(c, "A got %s", line)
	}()

	var reply string
	err = b.Do(func() error {
		c, err := net.DialTimeout("tcp4", ln.Addr().String(), 5*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(c, "hello from B\n"); err != nil {
			return err
		}
		reply, err = bufio.NewReader(c).ReadString('\n')
		return err
	})
	if err != nil {
		t.Fatalf("dial A (%s) from B: %v", ln.Addr(), err)
	}
	if reply != "A got hello from B\n" {
		t.Fatalf("reply = %q", reply)
	}
	// A's address lives in A only: the host namespace cannot bind it.
	if l, err := net.Listen("tcp4", ln.Addr().String()); err == nil {
		l.Close()
		t.Errorf("A's address %s is bindable in the host namespace", ln.Addr())
	}

	for _, n := range []*Netns{a, b} {
		id := filepath.Base(n.Path)
		if err := Teardown(netnsDir, id); err != nil {
			t.Fatal(err)
		}
		if err := Teardown(netnsDir, id); err != nil {
			t.Fatalf("second teardown: %v", err)
		}
		requireGone(t, "veth", n.HostVeth)
		if _, err := os.Stat(n.Path); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("netns pin %s still exists (err=%v)", n.Path, err)
		}
		if mounted(t, n.Path) {
			t.Errorf("netns %s still mounted", n.Path)
		}
	}
	if err := DeleteBridge(bridge); err != nil {
		t.Fatal(err)
	}
	requireGone(t, "bridge", bridge)
}

// checkPodSide looks into the pod namespace through a netlink handle: lo
// and eth0 up, the pod address on eth0, a default route via the gateway.
func checkPodSide(t *testing.T, n *Netns, gw net.IP) {
	t.Helper()
	ns, err := netns.GetFromPath(n.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	for _, name := range []string{"lo", PodIfName} {
		l, err := h.LinkByName(name)
		if err != nil {
			t.Fatalf("%s in %s: %v", name, n.Path, err)
		}
		if l.Attrs().Flags&net.FlagUp == 0 {
			t.Errorf("%s in %s is down", name, n.Path)
		}
	}
	eth, _ := h.LinkByName(PodIfName)
	addrs, err := h.AddrList(eth, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	if len(addrs) != 1 || addrs[0].IPNet.String() != n.IP.String() {
		t.Errorf("eth0 addresses = %v, want %s", addrs, n.IP.String())
	}
	routes, err := h.RouteList(eth, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range routes {
		isDefault := r.Dst == nil || r.Dst.String() == "0.0.0.0/0"
		if isDefault && r.Gw.Equal(gw) {
			found = true
		}
	}
	if !found {
		t.Errorf("no default route via %s in %s: %v", gw, n.Path, routes)
	}
}

func TestTeardownHalfCreated(t *testing.T) {
	suffix := networktest.RandHex(t, 3)
	dir := t.TempDir()
	podID := "wkt-half-" + suffix
	host := HostVethName(podID)
	t.Cleanup(func() {
		if l, err := netlink.LinkByName(host); err == nil {
			netlink.LinkDel(l)
		}
	})
	// A crash after creating the pin file but before mounting it, and after
	// creating the veth but before moving its peer.
	if err := os.WriteFile(Path(dir, podID), nil, 0o444); err != nil {
		t.Fatal(err)
	}
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: host}, PeerName: "wkp" + suffix}
	if err := netlink.LinkAdd(veth); err != nil {
		t.Fatal(err)
	}
	if err := Teardown(dir, podID); err != nil {
		t.Fatal(err)
	}
	requireGone(t, "veth", host)
	requireGone(t, "veth peer", "wkp"+suffix)
	if _, err := os.Stat(Path(dir, podID)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pin file left behind: %v", err)
	}
}

func TestSetupFailureUndoes(t *testing.T) {
	suffix := networktest.RandHex(t, 3)
	dir := t.TempDir()
	podID := "wkt-fail-" + suffix
	alloc, err := ipam.New(t.TempDir(), networktest.FreeSubnet(t))
	if err != nil {
		t.Fatal(err)
	}
	gw := alloc.Gateway()
	ip, err := alloc.Allocate(podID)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Setup(context.Background(), Config{PodID: podID, NetnsDir: dir, Bridge: "wktnone" + suffix[:4], IP: ip, Gateway: gw.IP})
	if err == nil {
		t.Fatal("Setup on a missing bridge succeeded")
	}
	// A canceled context aborts after the namespace exists; nothing may stay.
	bridge := "wkt" + suffix
	t.Cleanup(func() { DeleteBridge(bridge) })
	if err := EnsureBridge(bridge, gw); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Setup(ctx, Config{PodID: podID, NetnsDir: dir, Bridge: bridge, IP: ip, Gateway: gw.IP}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Setup with a canceled context: err = %v", err)
	}
	requireGone(t, "veth", HostVethName(podID))
	if _, err := os.Stat(Path(dir, podID)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pin file left behind after failed Setup: %v", err)
	}
	if mounted(t, Path(dir, podID)) {
		t.Errorf("netns still mounted after failed Setup")
	}
}
