package lb

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// loadTC loads the tc programs. Their maps are pinned in pinDir by name:
// the lb_* maps are the ones the socket hooks use, and the flow tables of a
// previous load are taken over, so that established flows survive a restart.
func loadTC(pinDir string) (*tcObjects, error) {
	if err := ensurePinDir(pinDir); err != nil {
		return nil, err
	}
	objs := &tcObjects{}
	opts := &ebpf.CollectionOptions{Maps: ebpf.MapOptions{PinPath: pinDir}}
	err := loadTcObjects(objs, opts)
	if errors.Is(err, ebpf.ErrMapIncompatible) {
		// A flow table of a different layout, pinned by an older version:
		// its flows are lost either way, so start the tables afresh. The
		// shared lb_* maps are never removed here.
		for _, name := range []string{tcMapTcCtFwd, tcMapTcCtRev, tcMapTcSnat, tcMapTcSnatRev} {
			if rmErr := os.Remove(filepath.Join(pinDir, name)); rmErr != nil && !errors.Is(rmErr, os.ErrNotExist) {
				return nil, fmt.Errorf("load tc programs: %w (and remove stale %s: %v)", err, name, rmErr)
			}
		}
		err = loadTcObjects(objs, opts)
	}
	if err != nil {
		var verr *ebpf.VerifierError
		if errors.As(err, &verr) {
			return nil, fmt.Errorf("load tc programs: %+v", verr)
		}
		return nil, fmt.Errorf("load tc programs: %w", err)
	}
	return objs, nil
}

func tcLinkPin(pinDir, ifname, dir string) string {
	return filepath.Join(pinDir, "links", "tc-"+ifname+"-"+dir)
}

// attachTC attaches the programs to ifname's TCX ingress and egress and pins
// the links. Links pinned by an earlier run are moved to the new programs in
// place, so that the interface never goes without them and is never
// attached twice; a pinned link whose interface is gone (or was recreated)
// is replaced.
func attachTC(objs *tcObjects, pinDir, ifname string) error {
	iface, err := net.InterfaceByName(ifname)
	if err != nil {
		return fmt.Errorf("attach tc: %w", err)
	}
	for _, hook := range []struct {
		dir    string
		attach ebpf.AttachType
		prog   *ebpf.Program
	}{
		{"ingress", ebpf.AttachTCXIngress, objs.TcIngress},
		{"egress", ebpf.AttachTCXEgress, objs.TcEgress},
	} {
		pin := tcLinkPin(pinDir, ifname, hook.dir)
		updated, err := tcUpdatePinned(pin, iface.Index, hook.prog)
		if err != nil {
			return fmt.Errorf("tc %s on %s: %w", hook.dir, ifname, err)
		}
		if updated {
			continue
		}
		l, err := link.AttachTCX(link.TCXOptions{
			Interface: iface.Index,
			Program:   hook.prog,
			Attach:    hook.attach,
		})
		if err != nil {
			return fmt.Errorf("attach tc %s to %s: %w", hook.dir, ifname, err)
		}
		err = l.Pin(pin)
		l.Close()
		if err != nil {
			// Unpinned and closed, the link is gone again.
			return fmt.Errorf("pin tc %s link of %s: %w", hook.dir, ifname, err)
		}
	}
	return nil
}

// tcUpdatePinned moves the link pinned at pin to prog and reports whether
// there was a usable one; a stale pin is removed.
func tcUpdatePinned(pin string, ifindex int, prog *ebpf.Program) (bool, error) {
	l, err := link.LoadPinnedLink(pin, nil)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		if rmErr := os.Remove(pin); rmErr != nil {
			return false, fmt.Errorf("load pinned link: %w (and remove it: %v)", err, rmErr)
		}
		return false, nil
	}
	defer l.Close()
	if info, err := l.Info(); err == nil && info.TCX() != nil &&
		int(info.TCX().Ifindex) == ifindex {
		if err := l.Update(prog); err == nil {
			return true, nil
		}
	}
	if err := l.Unpin(); err != nil {
		return false, fmt.Errorf("unpin stale link: %w", err)
	}
	return false, nil
}

// detachTC removes ifname's tc programs by unpinning their links; closing
// the last reference detaches them. Missing pins are not an error.
func detachTC(pinDir, ifname string) error {
	var errs []error
	for _, dir := range []string{"ingress", "egress"} {
		pin := tcLinkPin(pinDir, ifname, dir)
		l, err := link.LoadPinnedLink(pin, nil)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("load pinned tc %s link: %w", dir, err))
			continue
		}
		if err := l.Unpin(); err != nil {
			errs = append(errs, fmt.Errorf("unpin tc %s link: %w", dir, err))
		}
		l.Close()
	}
	return errors.Join(errs...)
}

// writeNodeConfig tells the tc programs the node's address and networks.
// An invalid NodeIP turns masquerading and the return path of masqueraded
// traffic off.
func writeNodeConfig(m *ebpf.Map, cfg NodeConfig) error {
	var v tcNodeConfig
	if cfg.NodeIP.IsValid() {
		if !cfg.NodeIP.Is4() {
			return fmt.Errorf("node IP %s is not IPv4", cfg.NodeIP)
		}
		v.NodeIp = tcBE32(cfg.NodeIP)
	}
	var err error
	if v.ClusterNet, v.ClusterMask, err = tcNet(cfg.ClusterCIDR); err != nil {
		return fmt.Errorf("cluster CIDR: %w", err)
	}
	if v.ServiceNet, v.ServiceMask, err = tcNet(cfg.ServiceCIDR); err != nil {
		return fmt.Errorf("service CIDR: %w", err)
	}
	if v.PodNet, v.PodMask, err = tcNet(cfg.PodCIDR); err != nil {
		return fmt.Errorf("pod CIDR: %w", err)
	}
	if cfg.PodsCgroup != "" {
		if v.PodsCgroupId, v.PodsCgroupLevel, err = cgroupID(cfg.PodsCgroup); err != nil {
			return fmt.Errorf("pods cgroup: %w", err)
		}
	}
	if err := m.Put(uint32(0), &v); err != nil {
		return fmt.Errorf("write node config: %w", err)
	}
	return nil
}

// tcBE32 is an IPv4 address as the programs read a __be32 field: its bytes
// in network order, read back in host order by the map's encoding.
func tcBE32(a netip.Addr) uint32 {
	b := a.As4()
	return binary.NativeEndian.Uint32(b[:])
}

// tcBE16 is a port as a __be16 field.
func tcBE16(p uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], p)
	return binary.NativeEndian.Uint16(b[:])
}

func tcNet(p netip.Prefix) (addr, mask uint32, err error) {
	if !p.IsValid() {
		return 0, 0, nil // no such network
	}
	if !p.Addr().Is4() {
		return 0, 0, fmt.Errorf("%s is not IPv4", p)
	}
	p = p.Masked()
	m := tcMask(p.Bits())
	return tcBE32(p.Addr()), tcBE32(m), nil
}

func tcMask(bits int) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], ^uint32(0)<<(32-bits))
	if bits == 0 {
		b = [4]byte{}
	}
	return netip.AddrFrom4(b)
}
