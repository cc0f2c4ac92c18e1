package allocator

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// IPRange allocates IPv4 addresses of a CIDR, never its network or
// broadcast address.
type IPRange struct {
	cidr *net.IPNet
	base uint32 // first usable address
	bits bitmap
}

// NewIPRange serves cidr, persisted under key. The reserved addresses (the
// API's own Service at .1, cluster DNS at .10) are handed out only to
// whoever asks for them by address.
func NewIPRange(client *clientv3.Client, key string, cidr *net.IPNet, reserved ...net.IP) (*IPRange, error) {
	ip4 := cidr.IP.To4()
	ones, total := cidr.Mask.Size()
	if ip4 == nil || total != 32 || total-ones < 2 {
		return nil, fmt.Errorf("allocator: %s is not an IPv4 range with room for addresses", cidr)
	}
	r := &IPRange{cidr: cidr, base: binary.BigEndian.Uint32(ip4) + 1}
	size := int(uint32(1)<<(total-ones)) - 2
	r.bits = bitmap{client: client, key: key, rangeStr: cidr.String(), size: size, reserved: map[int]bool{}}
	for _, ip := range reserved {
		if o, ok := r.offset(ip); ok {
			r.bits.reserved[o] = true
		}
	}
	return r, nil
}

// CIDR is the range served.
func (r *IPRange) CIDR() *net.IPNet { return r.cidr }

// Nth returns the n-th usable address (1 is the first), for the well-known
// addresses such as the DNS service's .10.
func (r *IPRange) Nth(n int) net.IP {
	ip := make(net.IP, 4)
	binary.BigEndian.PutUint32(ip, r.base+uint32(n-1))
	return ip
}

func (r *IPRange) offset(ip net.IP) (int, bool) {
	ip4 := ip.To4()
	if ip4 == nil || !r.cidr.Contains(ip4) {
		return 0, false
	}
	o := int(binary.BigEndian.Uint32(ip4)) - int(r.base)
	return o, o >= 0 && o < r.bits.size
}

// InRange reports whether ip can be allocated from this range.
func (r *IPRange) InRange(ip net.IP) bool {
	_, ok := r.offset(ip)
	return ok
}

// Allocate takes a specific address.
func (r *IPRange) Allocate(ctx context.Context, ip net.IP) error {
	o, ok := r.offset(ip)
	if !ok {
		return fmt.Errorf("the provided IP (%s) is not in the valid range. The range of valid IPs is %s", ip, r.cidr)
	}
	if err := r.bits.allocate(ctx, o); err != nil {
		if err == ErrAllocated {
			return fmt.Errorf("provided IP is already allocated")
		}
		return err
	}
	return nil
}

// AllocateNext takes any free address.
func (r *IPRange) AllocateNext(ctx context.Context) (net.IP, error) {
	o, err := r.bits.allocateNext(ctx)
	if err != nil {
		if err == ErrFull {
			return nil, fmt.Errorf("range is full")
		}
		return nil, err
	}
	return r.Nth(o + 1), nil
}

// Release frees an address; releasing a free one is a no-op.
func (r *IPRange) Release(ctx context.Context, ip net.IP) error {
	o, ok := r.offset(ip)
	if !ok {
		return nil
	}
	return r.bits.release(ctx, o)
}

// Has reports whether an address is allocated.
func (r *IPRange) Has(ctx context.Context, ip net.IP) (bool, error) {
	o, ok := r.offset(ip)
	if !ok {
		return false, nil
	}
	return r.bits.has(ctx, o)
}

// PortRange allocates ports in [Base, Base+Size).
type PortRange struct {
	Base, Size int
	bits       bitmap
}

// NewPortRange serves ports base..base+size-1, persisted under key.
func NewPortRange(client *clientv3.Client, key string, base, size int) *PortRange {
	return &PortRange{Base: base, Size: size, bits: bitmap{
		client: client, key: key, rangeStr: fmt.Sprintf("%d-%d", base, base+size-1), size: size,
	}}
}

func (p *PortRange) String() string { return p.bits.rangeStr }

// Allocate takes a specific port.
func (p *PortRange) Allocate(ctx context.Context, port int) error {
	if port < p.Base || port >= p.Base+p.Size {
		return fmt.Errorf("provided port is not in the valid range. The range of valid ports is %s", p)
	}
	if err := p.bits.allocate(ctx, port-p.Base); err != nil {
		if err == ErrAllocated {
			return fmt.Errorf("provided port is already allocated")
		}
		return err
	}
	return nil
}

// AllocateNext takes any free port.
func (p *PortRange) AllocateNext(ctx context.Context) (int, error) {
	o, err := p.bits.allocateNext(ctx)
	if err != nil {
		return 0, err
	}
	return p.Base + o, nil
}

// Release frees a port.
func (p *PortRange) Release(ctx context.Context, port int) error {
	if port < p.Base || port >= p.Base+p.Size {
		return nil
	}
	return p.bits.release(ctx, port-p.Base)
}
