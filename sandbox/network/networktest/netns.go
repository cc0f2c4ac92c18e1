package networktest

import (
	"path/filepath"
	"runtime"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// Netns makes a network namespace with its loopback up, pinned as
// /var/run/netns/wkt-<random> (where `ip netns` finds it), and removes it
// when the test ends. It returns the pin's path.
func Netns(t testing.TB) string {
	t.Helper()
	name := "wkt-" + RandHex(t, 4)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	ns, err := netns.NewNamed(name)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	if err := netns.Set(orig); err != nil {
		// The thread is left in the new namespace: locked once more, it
		// ends with the test's goroutine instead of serving others.
		runtime.LockOSThread()
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = netns.DeleteNamed(name) })
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err == nil {
		err = h.LinkSetUp(lo)
	}
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join("/var/run/netns", name)
}
