package nodeipam

import (
	"errors"
	"fmt"
	"math/big"
	"net/netip"
	"sync"
)

// maxSubnetBits bounds the allocator's bitmap (65536 ranges), as upstream
// refuses cluster CIDRs split into more than 2^16 node ranges.
const maxSubnetBits = 16

// errFull means every node range is taken.
var errFull = errors.New("no pod CIDR left in the cluster CIDR")

// allocator hands out the node-sized subnets of a cluster CIDR.
type allocator struct {
	cluster  netip.Prefix
	maskSize int

	mu     sync.Mutex
	used   []bool
	byNode map[string]int
	next   int // where the next search starts
}

func newAllocator(cluster netip.Prefix, maskSize int) (*allocator, error) {
	cluster = cluster.Masked()
	bits := maskSize - cluster.Bits()
	if bits < 0 {
		return nil, fmt.Errorf("node CIDR mask size %d is shorter than the mask of cluster CIDR %s: it must be greater than or equal to %d", maskSize, cluster, cluster.Bits())
	}
	if maskSize > cluster.Addr().BitLen() {
		return nil, fmt.Errorf("node CIDR mask size %d is longer than an address of cluster CIDR %s (%d bits)", maskSize, cluster, cluster.Addr().BitLen())
	}
	if bits > maxSubnetBits {
		return nil, fmt.Errorf("cluster CIDR %s holds 2^%d ranges of /%d, more than 2^%d", cluster, bits, maskSize, maxSubnetBits)
	}
	return &allocator{cluster: cluster, maskSize: maskSize, used: make([]bool, 1<<bits), byNode: map[string]int{}}, nil
}

// subnet is the i-th range.
func (a *allocator) subnet(i int) netip.Prefix {
	base := new(big.Int).SetBytes(a.cluster.Addr().AsSlice())
	off := new(big.Int).Lsh(big.NewInt(int64(i)), uint(a.cluster.Addr().BitLen()-a.maskSize))
	raw := new(big.Int).Add(base, off).Bytes()
	buf := make([]byte, a.cluster.Addr().BitLen()/8)
	copy(buf[len(buf)-len(raw):], raw)
	addr, _ := netip.AddrFromSlice(buf)
	return netip.PrefixFrom(addr, a.maskSize)
}

// index is the range number of p, or -1 when p is not one of the ranges.
func (a *allocator) index(p netip.Prefix) int {
	if p.Bits() != a.maskSize || !a.cluster.Contains(p.Addr()) || p.Addr() != p.Masked().Addr() {
		return -1
	}
	base := new(big.Int).SetBytes(a.cluster.Addr().AsSlice())
	off := new(big.Int).Sub(new(big.Int).SetBytes(p.Addr().AsSlice()), base)
	return int(off.Rsh(off, uint(a.cluster.Addr().BitLen()-a.maskSize)).Int64())
}

// occupy records that node holds cidr. A range outside the cluster CIDR
// (set by hand, or from a previous configuration) is not ours to manage.
func (a *allocator) occupy(node, cidr string) error {
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		return fmt.Errorf("node %s podCIDR %q: %w", node, cidr, err)
	}
	i := a.index(p)
	if i < 0 {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if cur, ok := a.byNode[node]; ok && cur == i {
		return nil
	}
	if a.used[i] {
		for other, j := range a.byNode {
			if j == i {
				return fmt.Errorf("node %s podCIDR %s is already held by node %s", node, cidr, other)
			}
		}
	}
	a.used[i] = true
	a.byNode[node] = i
	return nil
}

// allocate returns node's range, taking the next free one if it has none.
func (a *allocator) allocate(node string) (netip.Prefix, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if i, ok := a.byNode[node]; ok {
		return a.subnet(i), nil
	}
	n := len(a.used)
	for k := range n {
		i := (a.next + k) % n
		if !a.used[i] {
			a.used[i] = true
			a.byNode[node] = i
			a.next = (i + 1) % n
			return a.subnet(i), nil
		}
	}
	return netip.Prefix{}, errFull
}

// release frees node's range; it reports whether there was one.
func (a *allocator) release(node string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	i, ok := a.byNode[node]
	if !ok {
		return false
	}
	a.used[i] = false
	delete(a.byNode, node)
	return true
}
