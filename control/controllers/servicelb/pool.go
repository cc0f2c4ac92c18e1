package servicelb

import (
	"fmt"
	"net/netip"
	"strings"
)

// Pool is a contiguous range of addresses LoadBalancer Services are given.
type Pool struct {
	first, last netip.Addr
}

// ParsePool reads a CIDR ("192.0.2.0/28": every address but the network
// and broadcast ones for prefixes shorter than /31) or an inclusive range
// ("192.0.2.10-192.0.2.20"). An empty string is no pool.
func ParsePool(s string) (*Pool, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	if from, to, ok := strings.Cut(s, "-"); ok {
		first, err := netip.ParseAddr(strings.TrimSpace(from))
		if err != nil {
			return nil, fmt.Errorf("invalid range start %q: %w", from, err)
		}
		last, err := netip.ParseAddr(strings.TrimSpace(to))
		if err != nil {
			return nil, fmt.Errorf("invalid range end %q: %w", to, err)
		}
		if first.Is4() != last.Is4() || last.Less(first) {
			return nil, fmt.Errorf("invalid range %q: end before start or mixed families", s)
		}
		return &Pool{first: first, last: last}, nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return nil, fmt.Errorf("invalid CIDR or range %q: %w", s, err)
	}
	p = p.Masked()
	first := p.Addr()
	last := lastOf(p)
	if first.Is4() && p.Bits() < 31 {
		first, last = first.Next(), last.Prev()
	}
	return &Pool{first: first, last: last}, nil
}

func lastOf(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := range b {
		bit := i * 8
		switch {
		case bit >= p.Bits():
			b[i] = 0xff
		case bit+8 > p.Bits():
			b[i] |= 0xff >> (p.Bits() - bit)
		}
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// Contains says whether a is in the pool.
func (p *Pool) Contains(a netip.Addr) bool {
	return p != nil && a.IsValid() && a.BitLen() == p.first.BitLen() && !a.Less(p.first) && !p.last.Less(a)
}

func (p *Pool) String() string { return p.first.String() + "-" + p.last.String() }

// allocator hands out pool addresses to Service keys.
type allocator struct {
	pool  *Pool
	byIP  map[netip.Addr]string
	byKey map[string]netip.Addr
}

func newAllocator(p *Pool) *allocator {
	return &allocator{pool: p, byIP: map[netip.Addr]string{}, byKey: map[string]netip.Addr{}}
}

// claim gives a to key if it is in the pool and free (or already key's).
func (a *allocator) claim(key string, ip netip.Addr) bool {
	if !a.pool.Contains(ip) {
		return false
	}
	if owner, taken := a.byIP[ip]; taken {
		return owner == key
	}
	a.release(key)
	a.byIP[ip], a.byKey[key] = key, ip
	return true
}

// next gives key the lowest free address, or reports the pool exhausted.
// Scanning is linear in the number of allocated addresses: pools are small.
func (a *allocator) next(key string) (netip.Addr, bool) {
	if ip, ok := a.byKey[key]; ok {
		return ip, true
	}
	for ip := a.pool.first; ip.IsValid() && !a.pool.last.Less(ip); ip = ip.Next() {
		if _, taken := a.byIP[ip]; !taken {
			a.byIP[ip], a.byKey[key] = key, ip
			return ip, true
		}
	}
	return netip.Addr{}, false
}

// release frees key's address, if it has one, and says whether it had.
func (a *allocator) release(key string) bool {
	ip, ok := a.byKey[key]
	if ok {
		delete(a.byKey, key)
		delete(a.byIP, ip)
	}
	return ok
}
