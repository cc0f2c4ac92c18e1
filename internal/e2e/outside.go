package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/wasmkube/wasmkube/sandbox/network"
	"github.com/wasmkube/wasmkube/sandbox/network/networktest"
)

// Addresses of the outside host's link: TEST-NET-2, which nothing on this
// machine uses, on a veth that exists only for the test.
const (
	OutsideNodeIP = "198.51.100.1" // the node's end: pass it as --node-ip
	OutsideHostIP = "198.51.100.2" // the outside host's
	outsidePrefix = 24
)

// OutsideHost is a network namespace standing in for a machine beyond the
// node: a veth whose node end holds OutsideNodeIP, whose other end is in
// the namespace with OutsideHostIP and a default route through the node.
// It knows no route to the pod or Service ranges, so whatever reaches it
// from a pod was masqueraded, and whatever it reaches on the node went
// through the node's tc programs.
type OutsideHost struct {
	Name    string // the namespace, under /run/netns
	NodeEnd string // the veth in the node's namespace
}

// NewOutsideHost makes the namespace and its link, and removes both when
// the test ends.
func NewOutsideHost(t testing.TB) *OutsideHost {
	t.Helper()
	suffix := networktest.RandHex(t, 3)
	o := &OutsideHost{Name: "wkout-" + suffix, NodeEnd: "wko" + suffix}
	peer := "wkp" + suffix
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v\n%s", args, err, out)
		}
	}
	run("netns", "add", o.Name)
	t.Cleanup(func() {
		if l, err := netlink.LinkByName(o.NodeEnd); err == nil {
			_ = netlink.LinkDel(l)
		}
		if out, err := exec.Command("ip", "netns", "del", o.Name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v\n%s", o.Name, err, out)
		}
	})
	run("link", "add", o.NodeEnd, "type", "veth", "peer", "name", peer)
	run("link", "set", peer, "netns", o.Name)
	run("addr", "add", fmt.Sprintf("%s/%d", OutsideNodeIP, outsidePrefix), "dev", o.NodeEnd)
	run("link", "set", o.NodeEnd, "up")
	run("-n", o.Name, "addr", "add", fmt.Sprintf("%s/%d", OutsideHostIP, outsidePrefix), "dev", peer)
	run("-n", o.Name, "link", "set", peer, "up")
	run("-n", o.Name, "link", "set", "lo", "up")
	run("-n", o.Name, "route", "add", "default", "via", OutsideNodeIP)
	return o
}

// Do runs fn inside the outside host's namespace. Sockets made there keep
// the namespace afterwards.
func (o *OutsideHost) Do(fn func() error) error {
	errc := make(chan error, 1)
	// A goroutine of its own: a thread left in the wrong namespace dies
	// with it.
	go func() { errc <- network.Do(filepath.Join("/run/netns", o.Name), fn) }()
	return <-errc
}

// Dial connects from the outside host.
func (o *OutsideHost) Dial(ctx context.Context, netw, addr string) (net.Conn, error) {
	var c net.Conn
	err := o.Do(func() error {
		var err error
		c, err = (&net.Dialer{}).DialContext(ctx, netw, addr)
		return err
	})
	return c, err
}

// Listen opens a listener on the outside host.
func (o *OutsideHost) Listen(netw, addr string) (net.Listener, error) {
	var l net.Listener
	err := o.Do(func() error {
		var err error
		l, err = net.Listen(netw, addr)
		return err
	})
	return l, err
}

// HTTPGet fetches url from the outside host on a new connection.
func (o *OutsideHost) HTTPGet(url string) (string, error) {
	client := &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{DialContext: o.Dial, DisableKeepAlives: true},
	}
	return httpGetWith(client, url)
}

// httpGetWith fetches url through client and fails on any status but
// 200 OK.
func httpGetWith(client *http.Client, url string) (string, error) {
	resp, err := client.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return string(body), fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return string(body), nil
}
