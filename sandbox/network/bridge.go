package network

import (
	"errors"
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
)

// EnsureBridge makes sure the node bridge name exists, carries gateway (the
// first address of the podCIDR, with its prefix length) and is up. It is
// idempotent so the agent can call it on every start.
func EnsureBridge(name string, gateway net.IPNet) error {
	if err := checkIfName(name); err != nil {
		return err
	}
	if gateway.IP.To4() == nil {
		return fmt.Errorf("network: bridge %s: gateway %s is not IPv4", name, gateway.String())
	}
	link, err := netlink.LinkByName(name)
	var notFound netlink.LinkNotFoundError
	switch {
	case errors.As(err, &notFound):
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name}}
		if err := netlink.LinkAdd(br); err != nil && !errors.Is(err, errExist) {
			return fmt.Errorf("network: create bridge %s: %w", name, err)
		}
		if link, err = netlink.LinkByName(name); err != nil {
			return fmt.Errorf("network: look up new bridge %s: %w", name, err)
		}
	case err != nil:
		return fmt.Errorf("network: look up bridge %s: %w", name, err)
	}
	if link.Type() != "bridge" {
		return fmt.Errorf("network: %s exists but is a %s, not a bridge", name, link.Type())
	}
	// AddrReplace rather than AddrAdd: re-running on a configured bridge must
	// not fail with EEXIST.
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: gateway.IP.To4(), Mask: gateway.Mask}}
	if err := netlink.AddrReplace(link, addr); err != nil {
		return fmt.Errorf("network: set %s on bridge %s: %w", gateway.String(), name, err)
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("network: bring bridge %s up: %w", name, err)
	}
	return nil
}

// DeleteBridge removes the bridge; a missing bridge is not an error. Pods
// still attached lose connectivity, so only node decommissioning and tests
// call it.
func DeleteBridge(name string) error {
	link, err := netlink.LinkByName(name)
	var notFound netlink.LinkNotFoundError
	if errors.As(err, &notFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("network: look up bridge %s: %w", name, err)
	}
	if link.Type() != "bridge" {
		return fmt.Errorf("network: refusing to delete %s: a %s, not a bridge", name, link.Type())
	}
	if err := netlink.LinkDel(link); err != nil {
		return fmt.Errorf("network: delete bridge %s: %w", name, err)
	}
	return nil
}

func checkIfName(name string) error {
	if name == "" || len(name) > 15 {
		return fmt.Errorf("network: interface name %q must be 1 to 15 bytes", name)
	}
	return nil
}
