package podroutes

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
)

// plan is what a Node's pods need from this node: the routes to make and
// why any pod range gets none.
type plan struct {
	routes   []netlink.Route
	problems []string
}

// planFor is the plan for a Node other than this one, given this host's
// addresses.
func planFor(node *corev1.Node, host hostAddrs) plan {
	var p plan
	ips := internalIPs(node)
	for _, dst := range podRanges(node) {
		i := indexOfFamily(ips, dst.Addr().Is4())
		if i < 0 {
			if len(ips) > 0 {
				p.problems = append(p.problems, fmt.Sprintf("pod range %s: the node has no InternalIP of its family", dst))
			}
			continue // no address yet: its status update brings one
		}
		gw := ips[i]
		if host.local[gw] {
			// The node runs on this host (tests and small setups run
			// several): its pods are reached through its own bridge.
			continue
		}
		link, ok := host.connectedLink(gw)
		if !ok {
			p.problems = append(p.problems, fmt.Sprintf("pod range %s: its InternalIP %s is on no directly connected subnet of this node, and host-gw routes need the nodes on one L2 segment", dst, gw))
			continue
		}
		p.routes = append(p.routes, netlink.Route{
			Dst:       ipNet(dst),
			Gw:        net.IP(gw.AsSlice()),
			LinkIndex: link,
			Protocol:  Protocol,
			Table:     unix.RT_TABLE_MAIN,
		})
	}
	return p
}

// podRanges are the Node's pod ranges, valid and masked; spec.podCIDR
// alone stands for spec.podCIDRs when only it is set.
func podRanges(n *corev1.Node) []netip.Prefix {
	cidrs := n.Spec.PodCIDRs
	if len(cidrs) == 0 && n.Spec.PodCIDR != "" {
		cidrs = []string{n.Spec.PodCIDR}
	}
	var out []netip.Prefix
	for _, s := range cidrs {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
		}
	}
	return out
}

// internalIPs are the Node's InternalIP addresses in status order.
func internalIPs(n *corev1.Node) []netip.Addr {
	var out []netip.Addr
	for _, a := range n.Status.Addresses {
		if a.Type != corev1.NodeInternalIP {
			continue
		}
		if ip, err := netip.ParseAddr(a.Address); err == nil {
			out = append(out, ip.Unmap())
		}
	}
	return out
}

func indexOfFamily(ips []netip.Addr, v4 bool) int {
	for i, ip := range ips {
		if ip.Is4() == v4 {
			return i
		}
	}
	return -1
}

// connected is a subnet an interface that is up is directly attached to.
type connected struct {
	subnet netip.Prefix
	link   int
}

// hostAddrs is what this node knows of its own addresses.
type hostAddrs struct {
	local   map[netip.Addr]bool
	subnets []connected
}

// connectedLink is the interface whose connected subnet holds gw, the
// most specific one when several do.
func (h hostAddrs) connectedLink(gw netip.Addr) (int, bool) {
	best, bits := 0, -1
	for _, s := range h.subnets {
		if s.subnet.Contains(gw) && s.subnet.Bits() > bits {
			best, bits = s.link, s.subnet.Bits()
		}
	}
	return best, bits >= 0
}

// hostAddrs lists this node's addresses and the subnets of its interfaces
// that are up. Host addresses (/32, /128) have no subnet to reach others on.
func (c *Controller) hostAddrs() (hostAddrs, error) {
	addrs, err := c.nl.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		// An interrupted dump is incomplete: the sync is retried.
		return hostAddrs{}, fmt.Errorf("podroutes: list addresses: %w", err)
	}
	h := hostAddrs{local: map[netip.Addr]bool{}}
	up := map[int]bool{}
	for _, a := range addrs {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok {
			continue
		}
		ip = ip.Unmap()
		h.local[ip] = true
		ones, _ := a.Mask.Size()
		if ones == ip.BitLen() || ip.IsLoopback() {
			continue
		}
		isUp, seen := up[a.LinkIndex]
		if !seen {
			l, err := c.nl.LinkByIndex(a.LinkIndex)
			if err != nil {
				return hostAddrs{}, fmt.Errorf("podroutes: interface %d: %w", a.LinkIndex, err)
			}
			isUp = l.Attrs().Flags&net.FlagUp != 0
			up[a.LinkIndex] = isUp
		}
		if isUp {
			h.subnets = append(h.subnets, connected{subnet: netip.PrefixFrom(ip, ones).Masked(), link: a.LinkIndex})
		}
	}
	return h, nil
}

// mainRoutes lists the main table's routes, split into ours (our
// protocol) and everyone else's: one dump serves a whole sync.
func (c *Controller) mainRoutes() (ours, others []netlink.Route, err error) {
	rs, err := c.nl.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return nil, nil, fmt.Errorf("podroutes: list routes: %w", err)
	}
	for _, r := range rs {
		if r.Protocol == Protocol {
			ours = append(ours, r)
		} else {
			others = append(others, r)
		}
	}
	return ours, others, nil
}

// foreignRoutes are the routes of others into a pod range: one to the
// range itself (same, "" when there is none), and those to parts of it
// (inside), which take those parts' traffic whatever route the whole range
// has. A route around the range (a default route, a larger prefix) is no
// conflict: ours is more specific.
type foreignRoutes struct {
	same   string
	inside []string
}

func foreignInto(dst netip.Prefix, others []netlink.Route) foreignRoutes {
	var out foreignRoutes
	for _, r := range others {
		got, ok := prefixOf(r.Dst)
		if !ok || got.Bits() < dst.Bits() || !dst.Contains(got.Addr()) {
			continue
		}
		if got == dst {
			out.same = fmt.Sprintf("proto %d", r.Protocol)
		} else {
			out.inside = append(out.inside, fmt.Sprintf("%s proto %d", got, r.Protocol))
		}
	}
	return out
}

// del deletes one of our routes. The kernel matches the protocol too, so
// it never removes someone else's route to the same destination.
func (c *Controller) del(r netlink.Route) error {
	if r.Protocol != Protocol {
		return fmt.Errorf("podroutes: refusing to delete route %s with proto %d", r.Dst, r.Protocol)
	}
	if err := c.nl.RouteDel(&r); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("podroutes: delete route %s via %s: %w", r.Dst, r.Gw, err)
	}
	return nil
}

// sameRoute says whether an existing route of ours is want already.
func sameRoute(have, want netlink.Route) bool {
	h, ok1 := prefixOf(have.Dst)
	w, ok2 := prefixOf(want.Dst)
	return ok1 && ok2 && h == w && have.Gw.Equal(want.Gw) && have.LinkIndex == want.LinkIndex
}

func prefixOf(n *net.IPNet) (netip.Prefix, bool) {
	if n == nil {
		return netip.Prefix{}, false
	}
	ip, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(ip.Unmap(), ones).Masked(), true
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}
