// Package networktest gives tests of node networking names and addresses
// that cannot collide with the machine's own or with other tests running at
// the same time.
package networktest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"testing"

	"github.com/vishvananda/netlink"
)

// RandHex returns n random bytes in hex, for unique link and pod names
// (kernel link names are at most 15 characters, so keep n small).
func RandHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// FreeSubnet picks a 10.244.x.0/24 that no host route overlaps, so a test
// never shadows an address the machine uses.
func FreeSubnet(t testing.TB) string {
	t.Helper()
	routes, err := netlink.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	for range 50 {
		b := make([]byte, 1)
		if _, err := rand.Read(b); err != nil {
			t.Fatal(err)
		}
		_, cand, _ := net.ParseCIDR(fmt.Sprintf("10.244.%d.0/24", 100+int(b[0])%150))
		if !overlapsRoute(cand, routes) {
			return cand.String()
		}
	}
	t.Fatal("no free 10.244.x.0/24 for the test")
	return ""
}

// FreeSubnetOfSize picks a 10.244.x.0/ones (18 <= ones <= 23) that no host
// route overlaps, for a node that needs more than a /24 of pod addresses.
// It is taken from 10.244.0.0 - 10.244.99.255, below the /24s FreeSubnet
// picks, so that a large range never covers a /24 another test is about to
// take; once its bridge route exists, FreeSubnet steers clear of it too.
func FreeSubnetOfSize(t testing.TB, ones int) string {
	t.Helper()
	if ones < 18 || ones > 23 {
		t.Fatalf("FreeSubnetOfSize: /%d is not between /18 and /23", ones)
	}
	routes, err := netlink.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	step := 1 << (24 - ones) // third octets a range spans
	var candidates []*net.IPNet
	for third := 0; third+step <= 100; third += step {
		_, cand, _ := net.ParseCIDR(fmt.Sprintf("10.244.%d.0/%d", third, ones))
		candidates = append(candidates, cand)
	}
	for range 50 {
		b := make([]byte, 1)
		if _, err := rand.Read(b); err != nil {
			t.Fatal(err)
		}
		if cand := candidates[int(b[0])%len(candidates)]; !overlapsRoute(cand, routes) {
			return cand.String()
		}
	}
	t.Fatalf("no free 10.244.x.0/%d for the test", ones)
	return ""
}

func overlapsRoute(cand *net.IPNet, routes []netlink.Route) bool {
	for _, r := range routes {
		if r.Dst == nil {
			continue
		}
		if ones, _ := r.Dst.Mask.Size(); ones == 0 {
			continue // the default route overlaps everything
		}
		if r.Dst.Contains(cand.IP) || cand.Contains(r.Dst.IP) {
			return true
		}
	}
	return false
}
