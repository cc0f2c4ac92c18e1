package network

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

var errExist = unix.EEXIST

// PodIfName is the pod side of the veth pair, the name every container in
// the pod sees.
const PodIfName = "eth0"

// Config describes one pod's network.
type Config struct {
	PodID    string    // sandbox id; names the pin file and the host veth
	NetnsDir string    // directory holding the pinned namespaces
	Bridge   string    // node bridge the host veth joins
	IP       net.IPNet // pod address with the podCIDR's prefix length
	Gateway  net.IP    // bridge address, the pod's default route
	MTU      int       // 0 means the bridge's MTU
}

// Netns is a set-up pod network.
type Netns struct {
	Path     string    // pinned namespace, for OCI specs and setns
	HostVeth string    // host end of the veth pair, a bridge port
	IP       net.IPNet // pod address on eth0
	Gateway  net.IP
}

// Path is where the namespace of podID is pinned under netnsDir.
func Path(netnsDir, podID string) string {
	return filepath.Join(netnsDir, podID)
}

// HostVethName derives the host veth name from the pod id. Pod ids are
// UIDs far longer than IFNAMSIZ allows, and truncating them would collide
// for ids sharing a prefix; a hash keeps the name short, stable across
// restarts and recognisable by its prefix.
func HostVethName(podID string) string {
	sum := sha256.Sum256([]byte(podID))
	return "wkv" + hex.EncodeToString(sum[:])[:12]
}

// Setup creates the pod's namespace and wires it to the bridge. On error,
// everything it created is removed again; things it found already existing
// are left alone and reported, since they may belong to a live sandbox.
func Setup(ctx context.Context, cfg Config) (_ *Netns, err error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	path := Path(cfg.NetnsDir, cfg.PodID)
	hostName := HostVethName(cfg.PodID)

	br, err := netlink.LinkByName(cfg.Bridge)
	if err != nil {
		return nil, fmt.Errorf("network: pod %s: look up bridge %s: %w", cfg.PodID, cfg.Bridge, err)
	}
	if br.Type() != "bridge" {
		return nil, fmt.Errorf("network: pod %s: %s is a %s, not a bridge", cfg.PodID, cfg.Bridge, br.Type())
	}
	if _, err := netlink.LinkByName(hostName); err == nil {
		return nil, fmt.Errorf("network: pod %s: host veth %s: %w", cfg.PodID, hostName, os.ErrExist)
	}
	mtu := cfg.MTU
	if mtu == 0 {
		mtu = br.Attrs().MTU
	}

	if err := os.MkdirAll(cfg.NetnsDir, 0o755); err != nil {
		return nil, fmt.Errorf("network: pod %s: create %s: %w", cfg.PodID, cfg.NetnsDir, err)
	}
	if err := pinNewNetns(path); err != nil {
		return nil, fmt.Errorf("network: pod %s: %w", cfg.PodID, err)
	}
	// From here on the pin file is ours, so a failure tears everything down.
	defer func() {
		if err != nil {
			if terr := Teardown(cfg.NetnsDir, cfg.PodID); terr != nil {
				err = errors.Join(err, fmt.Errorf("undo partial setup: %w", terr))
			}
		}
	}()

	ns, err := netns.GetFromPath(path)
	if err != nil {
		return nil, fmt.Errorf("network: pod %s: open %s: %w", cfg.PodID, path, err)
	}
	defer ns.Close()
	inNS, err := netlink.NewHandleAt(ns)
	if err != nil {
		return nil, fmt.Errorf("network: pod %s: netlink handle in %s: %w", cfg.PodID, path, err)
	}
	defer inNS.Close()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("network: pod %s: %w", cfg.PodID, err)
	}

	// Creating the peer directly inside the namespace avoids a window where
	// a second "eth0" would exist in the host namespace and clash with the
	// node's own interface.
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: hostName, MTU: mtu},
		PeerName:      PodIfName,
		PeerNamespace: netlink.NsFd(int(ns)),
		PeerMTU:       uint32(mtu),
	}
	if err := netlink.LinkAdd(veth); err != nil {
		return nil, fmt.Errorf("network: pod %s: create veth %s: %w", cfg.PodID, hostName, err)
	}
	host, err := netlink.LinkByName(hostName)
	if err != nil {
		return nil, fmt.Errorf("network: pod %s: look up veth %s: %w", cfg.PodID, hostName, err)
	}
	if err := netlink.LinkSetMaster(host, br); err != nil {
		return nil, fmt.Errorf("network: pod %s: attach %s to %s: %w", cfg.PodID, hostName, cfg.Bridge, err)
	}
	if err := netlink.LinkSetUp(host); err != nil {
		return nil, fmt.Errorf("network: pod %s: bring %s up: %w", cfg.PodID, hostName, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("network: pod %s: %w", cfg.PodID, err)
	}
	if err := configurePodSide(inNS, cfg); err != nil {
		return nil, fmt.Errorf("network: pod %s: %w", cfg.PodID, err)
	}
	return &Netns{
		Path:     path,
		HostVeth: hostName,
		IP:       net.IPNet{IP: cfg.IP.IP.To4(), Mask: cfg.IP.Mask},
		Gateway:  cfg.Gateway.To4(),
	}, nil
}

func configurePodSide(h *netlink.Handle, cfg Config) error {
	lo, err := h.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("look up lo in pod namespace: %w", err)
	}
	// Containers of one pod talk over localhost, so lo must be up even when
	// the pod has no other traffic.
	if err := h.LinkSetUp(lo); err != nil {
		return fmt.Errorf("bring lo up: %w", err)
	}
	eth, err := h.LinkByName(PodIfName)
	if err != nil {
		return fmt.Errorf("look up %s in pod namespace: %w", PodIfName, err)
	}
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: cfg.IP.IP.To4(), Mask: cfg.IP.Mask}}
	if err := h.AddrAdd(eth, addr); err != nil {
		return fmt.Errorf("add %s to %s: %w", cfg.IP.String(), PodIfName, err)
	}
	// The link must be up before the route: the kernel only accepts a
	// gateway it can reach through an up link's connected route.
	if err := h.LinkSetUp(eth); err != nil {
		return fmt.Errorf("bring %s up: %w", PodIfName, err)
	}
	route := &netlink.Route{
		LinkIndex: eth.Attrs().Index,
		Gw:        cfg.Gateway.To4(),
		Scope:     netlink.SCOPE_UNIVERSE,
	}
	if err := h.RouteAdd(route); err != nil {
		return fmt.Errorf("add default route via %s: %w", cfg.Gateway, err)
	}
	return nil
}

// Teardown removes the pod's veth pair and pinned namespace. Every step
// tolerates the thing being absent, so it can be retried and also cleans
// up after a Setup that crashed halfway.
func Teardown(netnsDir, podID string) error {
	if err := checkPodID(podID); err != nil {
		return err
	}
	var errs []error
	hostName := HostVethName(podID)
	link, err := netlink.LinkByName(hostName)
	var notFound netlink.LinkNotFoundError
	switch {
	case err == nil:
		// Deleting one end of a veth deletes its peer in the pod namespace.
		if err := netlink.LinkDel(link); err != nil {
			errs = append(errs, fmt.Errorf("delete veth %s: %w", hostName, err))
		}
	case !errors.As(err, &notFound):
		errs = append(errs, fmt.Errorf("look up veth %s: %w", hostName, err))
	}

	path := Path(netnsDir, podID)
	// EINVAL means the file exists but nothing is mounted on it: a crash
	// between creating the pin file and bind-mounting it.
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil &&
		!errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.EINVAL) {
		errs = append(errs, fmt.Errorf("unmount %s: %w", path, err))
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, fmt.Errorf("remove %s: %w", path, err))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("network: teardown pod %s: %w", podID, err)
	}
	return nil
}

// Do runs fn on an OS thread switched into the namespace at path, for code
// that must create sockets inside the pod (the wasm host, probes). Sockets
// keep their namespace after fn returns, so they can be used from any
// goroutine afterwards.
//
// In the rare case that switching back fails, the calling goroutine stays
// locked to the tainted thread (which the runtime then discards when the
// goroutine exits); callers that cannot tolerate that should call Do from
// a goroutine of their own, as the tests do.
func Do(path string, fn func() error) error {
	target, err := netns.GetFromPath(path)
	if err != nil {
		return fmt.Errorf("network: open %s: %w", path, err)
	}
	defer target.Close()

	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("network: current namespace: %w", err)
	}
	defer orig.Close()
	if err := netns.Set(target); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("network: enter %s: %w", path, err)
	}
	fnErr := fn()
	if err := netns.Set(orig); err != nil {
		// The thread stays locked, so the runtime discards it when this
		// goroutine exits instead of reusing a thread in the wrong namespace.
		return errors.Join(fnErr, fmt.Errorf("network: return from %s: %w", path, err))
	}
	runtime.UnlockOSThread()
	return fnErr
}

// Do runs fn inside the pod's namespace; see the package-level Do.
func (n *Netns) Do(fn func() error) error { return Do(n.Path, fn) }

// pinNewNetns creates a fresh network namespace and bind-mounts it at path.
// The work happens on a dedicated, locked goroutine that is never unlocked:
// its thread ends in the new namespace, and exiting while locked makes the
// runtime destroy the thread rather than hand it to other goroutines.
func pinNewNetns(path string) error {
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		return fmt.Errorf("create pin file %s: %w", path, err)
	}
	f.Close()

	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("unshare network namespace: %w", err)
			return
		}
		src := fmt.Sprintf("/proc/%d/task/%d/ns/net", os.Getpid(), unix.Gettid())
		if err := unix.Mount(src, path, "none", unix.MS_BIND, ""); err != nil {
			errc <- fmt.Errorf("bind-mount %s at %s: %w", src, path, err)
			return
		}
		errc <- nil
	}()
	if err := <-errc; err != nil {
		os.Remove(path)
		return err
	}
	return nil
}

func (c Config) validate() error {
	if err := checkPodID(c.PodID); err != nil {
		return err
	}
	if c.NetnsDir == "" {
		return fmt.Errorf("network: pod %s: NetnsDir is empty", c.PodID)
	}
	if err := checkIfName(c.Bridge); err != nil {
		return fmt.Errorf("network: pod %s: bridge: %w", c.PodID, err)
	}
	if c.IP.IP.To4() == nil || c.IP.Mask == nil {
		return fmt.Errorf("network: pod %s: IP %s is not an IPv4 address with a prefix", c.PodID, c.IP.String())
	}
	subnet := net.IPNet{IP: c.IP.IP.Mask(c.IP.Mask), Mask: c.IP.Mask}
	if c.Gateway.To4() == nil || !subnet.Contains(c.Gateway) {
		return fmt.Errorf("network: pod %s: gateway %s is not in %s", c.PodID, c.Gateway, subnet.String())
	}
	if c.MTU < 0 || (c.MTU > 0 && c.MTU < 576) {
		return fmt.Errorf("network: pod %s: MTU %d out of range", c.PodID, c.MTU)
	}
	return nil
}

// checkPodID keeps the id usable as a single path component, since it
// names the pin file.
func checkPodID(id string) error {
	if id == "" || id == "." || id == ".." || strings.ContainsAny(id, "/\x00") {
		return fmt.Errorf("network: invalid pod id %q", id)
	}
	return nil
}
