package podroutes

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// testNS is a network namespace of the test's own: nothing the test does
// in it reaches the machine's interfaces or routes. It is freed when its
// handles close.
type testNS struct {
	ns netns.NsHandle
	h  *netlink.Handle
}

func newTestNS(t *testing.T) *testNS {
	t.Helper()
	var ns netns.NsHandle
	err := onThread(func() error {
		orig, err := netns.Get()
		if err != nil {
			return err
		}
		defer orig.Close()
		ns, err = netns.New() // also moves this thread into it
		if err != nil {
			return err
		}
		return netns.Set(orig)
	})
	if err != nil {
		t.Fatalf("new network namespace: %v", err)
	}
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		ns.Close()
		t.Fatalf("netlink handle: %v", err)
	}
	t.Cleanup(func() {
		h.Close()
		ns.Close()
	})
	return &testNS{ns: ns, h: h}
}

// onThread runs f on a locked thread that is handed back to the runtime
// only if f leaves it in the network namespace it started in: one still
// elsewhere dies with its goroutine.
func onThread(f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		ferr := f()
		if cur, err := netns.Get(); err == nil {
			if cur.Equal(orig) {
				runtime.UnlockOSThread()
			}
			cur.Close()
		}
		errc <- ferr
	}()
	return <-errc
}

// in runs f with the calling thread in the namespace, for sockets made in
// it (a socket stays in the namespace it was made in).
func (n *testNS) in(f func() error) error {
	return onThread(func() error {
		orig, err := netns.Get()
		if err != nil {
			return err
		}
		defer orig.Close()
		if err := netns.Set(n.ns); err != nil {
			return fmt.Errorf("enter namespace: %w", err)
		}
		ferr := f()
		if err := netns.Set(orig); err != nil {
			return fmt.Errorf("leave namespace: %w", err)
		}
		return ferr
	})
}

// addLink adds an interface with the address cidr and brings it up. It is
// one end of a veth pair whose other end, name+"p", stays in the namespace
// too (the kernel here has no dummy links).
func (n *testNS) addLink(t *testing.T, name, cidr string) netlink.Link {
	t.Helper()
	if err := n.h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: name + "p"}); err != nil {
		t.Fatalf("add %s: %v", name, err)
	}
	peer, err := n.h.LinkByName(name + "p")
	if err != nil {
		t.Fatal(err)
	}
	if err := n.h.LinkSetUp(peer); err != nil {
		t.Fatal(err)
	}
	return n.setUp(t, name, cidr)
}

// setUp gives the interface name the address cidr and brings it up.
func (n *testNS) setUp(t *testing.T, name, cidr string) netlink.Link {
	t.Helper()
	l, err := n.h.LinkByName(name)
	if err != nil {
		t.Fatalf("link %s: %v", name, err)
	}
	addr, err := netlink.ParseAddr(cidr)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.h.AddrAdd(l, addr); err != nil {
		t.Fatalf("address %s on %s: %v", cidr, name, err)
	}
	if err := n.h.LinkSetUp(l); err != nil {
		t.Fatalf("up %s: %v", name, err)
	}
	return l
}

// addRoute adds a route to dst via gw with the given protocol.
func (n *testNS) addRoute(t *testing.T, dst, gw string, proto netlink.RouteProtocol) {
	t.Helper()
	_, d, err := net.ParseCIDR(dst)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.h.RouteAdd(&netlink.Route{Dst: d, Gw: net.ParseIP(gw), Protocol: proto}); err != nil {
		t.Fatalf("route %s via %s proto %d: %v", dst, gw, proto, err)
	}
}

// routes lists the main table's IPv4 routes with a gateway, one
// "dst via gw dev proto" string each, sorted.
func (n *testNS) routes() ([]string, error) {
	rs, err := n.h.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, r := range rs {
		if r.Gw == nil || r.Dst == nil {
			continue
		}
		l, err := n.h.LinkByIndex(r.LinkIndex)
		if err != nil {
			return nil, err
		}
		out = append(out, fmt.Sprintf("%s via %s dev %s proto %d", r.Dst, r.Gw, l.Attrs().Name, r.Protocol))
	}
	slices.Sort(out)
	return out, nil
}

// waitRoutes waits until the routes are exactly want.
func (n *testNS) waitRoutes(t *testing.T, what string, want ...string) {
	t.Helper()
	slices.Sort(want)
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, err := n.routes()
		if err == nil && slices.Equal(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: routes\n  %s\nwant\n  %s\n(err %v)", what, strings.Join(got, "\n  "), strings.Join(want, "\n  "), err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// startController runs a controller until the test ends and returns a
// function that stops it earlier.
func startController(t *testing.T, cs kubernetes.Interface, opts ...Option) (stop func()) {
	t.Helper()
	c := New(cs, append([]Option{WithResyncPeriod(time.Hour)}, opts...)...)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
	t.Cleanup(stop)
	return stop
}

// createNode makes a Node with the pod range (none when "") and, when ip
// is not "", that InternalIP.
func createNode(t *testing.T, cs kubernetes.Interface, name, podCIDR, ip string) {
	t.Helper()
	ctx := context.Background()
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if podCIDR != "" {
		n.Spec.PodCIDR, n.Spec.PodCIDRs = podCIDR, []string{podCIDR}
	}
	n, err := cs.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create node %s: %v", name, err)
	}
	if ip != "" {
		setInternalIP(t, cs, name, ip)
	}
}

func setInternalIP(t *testing.T, cs kubernetes.Interface, name, ip string) {
	t.Helper()
	ctx := context.Background()
	n, err := cs.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: ip}, {Type: corev1.NodeHostName, Address: name}}
	if _, err := cs.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("node %s status: %v", name, err)
	}
}
