package lb

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"time"

	"github.com/cilium/ebpf"
)

// The Go mirrors of lb.h's map layouts. Addresses and ports are kept as
// byte arrays in network order, so the layout is the same on every host
// byte order and the structs have no padding to marshal.

type svcKey struct {
	Addr  [4]byte
	Port  [2]byte
	Proto uint8
	Scope uint8
}

type svcValue struct {
	ID              uint32
	Count           uint16
	Flags           uint16
	AffinityTimeout uint32 // seconds
	Pad             uint32
}

type backendKey struct {
	ID   uint32
	Slot uint32
}

type backendValue struct {
	Addr [4]byte
	Port [2]byte
	Pad  uint16
}

// Map names, as in lb.h; the pins under the pin directory carry them.
const (
	MapServices = "lb_services"
	MapBackends = "lb_backends"
	MapAffinity = "lb_affinity"
	MapSockRev  = "lb_sock_rev"
	MapConfig   = "lb_config"
)

// batchSize bounds one batch syscall's buffers.
const batchSize = 4096

func port16(p uint16) [2]byte { return [2]byte{byte(p >> 8), byte(p)} }

func portOf(b [2]byte) uint16 { return uint16(b[0])<<8 | uint16(b[1]) }

func keyOf(f Frontend) (svcKey, error) {
	if !f.Addr.Is4() {
		return svcKey{}, fmt.Errorf("frontend %v: address must be IPv4", f)
	}
	if f.Proto != TCP && f.Proto != UDP {
		return svcKey{}, fmt.Errorf("frontend %v: protocol must be TCP or UDP", f)
	}
	if f.Scope != ScopeSocket && f.Scope != ScopeExternal {
		return svcKey{}, fmt.Errorf("frontend %v: unknown scope %d", f, f.Scope)
	}
	return svcKey{Addr: f.Addr.As4(), Port: port16(f.Port), Proto: uint8(f.Proto), Scope: uint8(f.Scope)}, nil
}

func (k svcKey) frontend() Frontend {
	return Frontend{Addr: netip.AddrFrom4(k.Addr), Port: portOf(k.Port), Proto: Protocol(k.Proto), Scope: Scope(k.Scope)}
}

func backendOf(b Backend) (backendValue, error) {
	if !b.Addr.Is4() {
		return backendValue{}, fmt.Errorf("backend %v: address must be IPv4", b)
	}
	return backendValue{Addr: b.Addr.As4(), Port: port16(b.Port)}, nil
}

func (v backendValue) backend() Backend {
	return Backend{Addr: netip.AddrFrom4(v.Addr), Port: portOf(v.Port)}
}

// encodeService checks s and returns its backends as map values and its
// lb_services value but for the id: the backend count, the flags and the
// affinity timeout in whole seconds (rounded up: a timeout is never
// shortened).
func encodeService(f Frontend, s Service) ([]backendValue, svcValue, error) {
	if s.HostOnly && f.Scope != ScopeSocket {
		return nil, svcValue{}, fmt.Errorf("frontend %v: only socket frontends can be host-only", f)
	}
	if s.NodeAddr && (f.Scope != ScopeSocket || s.HostOnly) {
		return nil, svcValue{}, fmt.Errorf("frontend %v: only socket frontends that are not host-only can be node addresses", f)
	}
	if len(s.Backends) > math.MaxUint16 {
		return nil, svcValue{}, fmt.Errorf("frontend %v: %d backends, at most %d", f, len(s.Backends), math.MaxUint16)
	}
	if s.AffinityTimeout < 0 {
		return nil, svcValue{}, fmt.Errorf("frontend %v: negative affinity timeout", f)
	}
	bes := make([]backendValue, len(s.Backends))
	for i, b := range s.Backends {
		v, err := backendOf(b)
		if err != nil {
			return nil, svcValue{}, fmt.Errorf("frontend %v: %w", f, err)
		}
		bes[i] = v
	}
	secs := (s.AffinityTimeout + time.Second - 1) / time.Second
	if secs > math.MaxUint32 {
		secs = math.MaxUint32
	}
	val := svcValue{Count: uint16(len(bes)), AffinityTimeout: uint32(secs)}
	if s.HostOnly {
		val.Flags = svcHostOnly
	}
	if s.NodeAddr {
		val.Flags = svcNodeAddr
	}
	return bes, val, nil
}

// dumpServices reads the whole services map.
func dumpServices(m *ebpf.Map) (map[svcKey]svcValue, error) {
	out := make(map[svcKey]svcValue)
	keys := make([]svcKey, batchSize)
	vals := make([]svcValue, batchSize)
	err := dump(m, keys, vals, func(n int) {
		for i := 0; i < n; i++ {
			out[keys[i]] = vals[i]
		}
	})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", MapServices, err)
	}
	return out, nil
}

// dumpBackends reads the whole backends map.
func dumpBackends(m *ebpf.Map) (map[backendKey]backendValue, error) {
	out := make(map[backendKey]backendValue)
	keys := make([]backendKey, batchSize)
	vals := make([]backendValue, batchSize)
	err := dump(m, keys, vals, func(n int) {
		for i := 0; i < n; i++ {
			out[keys[i]] = vals[i]
		}
	})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", MapBackends, err)
	}
	return out, nil
}

// dump reads m in batches into keys and vals, calling got after each one.
// Kernels without batch lookup fall back to iteration.
func dump[K, V any](m *ebpf.Map, keys []K, vals []V, got func(n int)) error {
	var cursor ebpf.MapBatchCursor
	for {
		n, err := m.BatchLookup(&cursor, keys, vals, nil)
		got(n)
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return nil
		}
		if errors.Is(err, ebpf.ErrNotSupported) {
			break
		}
		if err != nil {
			return err
		}
	}
	var k K
	var v V
	it := m.Iterate()
	n := 0
	for it.Next(&k, &v) {
		keys[n], vals[n] = k, v
		n++
		if n == len(keys) {
			got(n)
			n = 0
		}
	}
	got(n)
	return it.Err()
}

// putAll writes keys[i] = vals[i], in batches where the kernel has them.
func putAll[K, V any](m *ebpf.Map, keys []K, vals []V) error {
	for start := 0; start < len(keys); start += batchSize {
		end := min(start+batchSize, len(keys))
		_, err := m.BatchUpdate(keys[start:end], vals[start:end], nil)
		if errors.Is(err, ebpf.ErrNotSupported) {
			for i := start; i < end; i++ {
				if err := m.Put(keys[i], vals[i]); err != nil {
					return err
				}
			}
			continue
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// deleteAll removes keys from m; keys already gone are not an error.
func deleteAll[K any](m *ebpf.Map, keys []K) error {
	for start := 0; start < len(keys); start += batchSize {
		end := min(start+batchSize, len(keys))
		n, err := m.BatchDelete(keys[start:end], nil)
		if err == nil {
			continue
		}
		if !errors.Is(err, ebpf.ErrNotSupported) && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return err
		}
		// A batch stops at the first missing key (or is not supported):
		// delete the rest one by one.
		if errors.Is(err, ebpf.ErrNotSupported) {
			n = 0
		}
		for i := start + n; i < end; i++ {
			if err := m.Delete(keys[i]); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
				return err
			}
		}
	}
	return nil
}

// The SVC_F_* flags of lb.h.
const (
	svcHostOnly = 1 // SVC_F_HOSTNS_ONLY
	svcNodeAddr = 2 // SVC_F_NODE_ADDR
)
