package ipam

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// ErrExhausted is returned when every pod address of the range is claimed.
var ErrExhausted = errors.New("ipam: no free address in range")

// tmpPrefix marks files being written before they are linked onto an
// address name; they never count as claims and are swept on start.
const tmpPrefix = ".tmp-"

// staleTemp is how old a temp file must be before it is considered left
// behind by a crash rather than in flight.
const staleTemp = time.Minute

// Allocation is one claimed address and the sandbox that holds it.
type Allocation struct {
	IP    net.IP
	Owner string
}

// Allocator claims addresses of one IPv4 range, persisted under a directory.
type Allocator struct {
	dir     string
	network net.IPNet
	first   uint32 // first pod address (gateway + 1)
	last    uint32 // last pod address (broadcast - 1)

	// mu guards next, which only spreads allocations round-robin so that a
	// just-released address is not reused at once (a late packet or a stale
	// endpoint would otherwise reach the wrong pod). Correctness never
	// depends on it: the directory decides what is in use.
	mu   sync.Mutex
	next uint32
}

// New returns an allocator for podCIDR (for example "10.244.0.0/24") whose
// claims live in dir, which is created if needed.
func New(dir, podCIDR string) (*Allocator, error) {
	_, network, err := net.ParseCIDR(podCIDR)
	if err != nil {
		return nil, fmt.Errorf("ipam: parse podCIDR %q: %w", podCIDR, err)
	}
	if network.IP.To4() == nil {
		return nil, fmt.Errorf("ipam: podCIDR %q: only IPv4 ranges are supported", podCIDR)
	}
	ones, bits := network.Mask.Size()
	if bits-ones < 2 || bits-ones > 30 {
		return nil, fmt.Errorf("ipam: podCIDR %q: prefix must be between /2 and /30", podCIDR)
	}
	base := ipToUint(network.IP)
	size := uint32(1) << uint(bits-ones)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("ipam: create state dir: %w", err)
	}
	a := &Allocator{
		dir:     dir,
		network: net.IPNet{IP: network.IP.To4(), Mask: network.Mask},
		first:   base + 2,
		last:    base + size - 2,
	}
	a.next = a.first
	if err := a.sweepTemp(); err != nil {
		return nil, err
	}
	return a, nil
}

// Gateway is the bridge address of the range, with the range's prefix
// length, ready to be put on the bridge.
func (a *Allocator) Gateway() net.IPNet { return Gateway(&a.network) }

// Gateway is the bridge address of the pod range cidr: its first host, with
// the range's prefix length.
func Gateway(cidr *net.IPNet) net.IPNet {
	network := cidr.IP.Mask(cidr.Mask)
	return net.IPNet{IP: uintToIP(ipToUint(network) + 1), Mask: cidr.Mask}
}

// Network is the whole pod range.
func (a *Allocator) Network() net.IPNet {
	return net.IPNet{IP: append(net.IP(nil), a.network.IP...), Mask: a.network.Mask}
}

// Allocate claims a free address for owner and returns it with the range's
// prefix length. If owner already holds an address it is returned again, so
// that a retried sandbox creation does not leak the first claim.
func (a *Allocator) Allocate(owner string) (net.IPNet, error) {
	if owner == "" || strings.ContainsAny(owner, "\n") {
		return net.IPNet{}, fmt.Errorf("ipam: invalid owner %q", owner)
	}
	a.mu.Lock()
	defer a.mu.Unlock()

	held, err := a.Allocations()
	if err != nil {
		return net.IPNet{}, err
	}
	for _, al := range held {
		if al.Owner == owner {
			return net.IPNet{IP: al.IP, Mask: a.network.Mask}, nil
		}
	}

	tmp, err := a.writeTemp(owner)
	if err != nil {
		return net.IPNet{}, err
	}
	defer os.Remove(tmp)

	n := a.last - a.first + 1
	for i := uint32(0); i < n; i++ {
		cand := a.first + (a.next-a.first+i)%n
		ip := uintToIP(cand)
		// link(2) fails with EEXIST when the name is taken, which makes the
		// check and the claim a single atomic step, also across processes.
		err := os.Link(tmp, filepath.Join(a.dir, ip.String()))
		if errors.Is(err, os.ErrExist) {
			continue
		}
		if err != nil {
			return net.IPNet{}, fmt.Errorf("ipam: claim %s for %s: %w", ip, owner, err)
		}
		if err := syncDir(a.dir); err != nil {
			return net.IPNet{}, err
		}
		a.next = cand + 1
		if a.next > a.last {
			a.next = a.first
		}
		return net.IPNet{IP: ip, Mask: a.network.Mask}, nil
	}
	return net.IPNet{}, fmt.Errorf("%w %s (owner %s)", ErrExhausted, a.network.String(), owner)
}

// Release frees ip. Releasing an address that is not claimed is not an
// error, so that teardown can be retried.
func (a *Allocator) Release(ip net.IP) error {
	if !a.network.Contains(ip) {
		return fmt.Errorf("ipam: release %s: not in range %s", ip, a.network.String())
	}
	err := os.Remove(filepath.Join(a.dir, ip.To4().String()))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("ipam: release %s: %w", ip, err)
	}
	return nil
}

// ReleaseOwner frees every address held by owner; the sandbox id is all a
// teardown after a crash may still know.
func (a *Allocator) ReleaseOwner(owner string) error {
	held, err := a.Allocations()
	if err != nil {
		return err
	}
	for _, al := range held {
		if al.Owner == owner {
			if err := a.Release(al.IP); err != nil {
				return err
			}
		}
	}
	return nil
}

// Allocations lists every claimed address with its owner.
func (a *Allocator) Allocations() ([]Allocation, error) {
	entries, err := os.ReadDir(a.dir)
	if err != nil {
		return nil, fmt.Errorf("ipam: list %s: %w", a.dir, err)
	}
	var out []Allocation
	for _, e := range entries {
		ip := net.ParseIP(e.Name()).To4()
		if ip == nil || !a.network.Contains(ip) {
			continue
		}
		data, err := os.ReadFile(filepath.Join(a.dir, e.Name()))
		if errors.Is(err, os.ErrNotExist) {
			continue // released while listing
		}
		if err != nil {
			return nil, fmt.Errorf("ipam: read claim %s: %w", e.Name(), err)
		}
		out = append(out, Allocation{IP: ip, Owner: strings.TrimSpace(string(data))})
	}
	return out, nil
}

// Owners maps each owner to the addresses it holds, for garbage collection
// of leaked sandboxes.
func (a *Allocator) Owners() (map[string][]net.IP, error) {
	held, err := a.Allocations()
	if err != nil {
		return nil, err
	}
	out := make(map[string][]net.IP, len(held))
	for _, al := range held {
		out[al.Owner] = append(out[al.Owner], al.IP)
	}
	return out, nil
}

// writeTemp writes the owner to a fresh, synced file so that the claim made
// by linking it is complete the moment it exists.
func (a *Allocator) writeTemp(owner string) (string, error) {
	f, err := os.CreateTemp(a.dir, tmpPrefix)
	if err != nil {
		return "", fmt.Errorf("ipam: create claim file: %w", err)
	}
	name := f.Name()
	_, werr := f.WriteString(owner + "\n")
	if werr == nil {
		werr = f.Sync()
	}
	cerr := f.Close()
	if werr == nil {
		werr = cerr
	}
	if werr != nil {
		os.Remove(name)
		return "", fmt.Errorf("ipam: write claim file: %w", werr)
	}
	return name, nil
}

// sweepTemp removes temp files left by a crash between write and link; they
// are never claims, only garbage. Recent ones are kept because another
// allocator over the same directory may be about to link them.
func (a *Allocator) sweepTemp() error {
	entries, err := os.ReadDir(a.dir)
	if err != nil {
		return fmt.Errorf("ipam: list %s: %w", a.dir, err)
	}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), tmpPrefix) {
			continue
		}
		if info, err := e.Info(); err != nil || time.Since(info.ModTime()) < staleTemp {
			continue
		}
		if err := os.Remove(filepath.Join(a.dir, e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("ipam: remove stale %s: %w", e.Name(), err)
		}
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("ipam: open %s for sync: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("ipam: sync %s: %w", dir, err)
	}
	return nil
}

func ipToUint(ip net.IP) uint32 { return binary.BigEndian.Uint32(ip.To4()) }

func uintToIP(v uint32) net.IP {
	ip := make(net.IP, 4)
	binary.BigEndian.PutUint32(ip, v)
	return ip
}
