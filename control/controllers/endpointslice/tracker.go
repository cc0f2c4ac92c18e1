package endpointslice

import (
	"strconv"
	"sync"

	discoveryv1 "k8s.io/api/discovery/v1"
)

// tracker remembers the slices this controller wrote or deleted until the
// informer cache reflects those writes. Without it a sync running right
// after a create would not see the new slice and would create another one
// (slices are named by generateName, so nothing would stop the duplicate).
type tracker struct {
	mu sync.Mutex
	// by Service key, then slice name.
	services map[string]map[string]expectation
}

type expectation struct {
	rv      uint64 // the resourceVersion written (or, for a delete, last seen)
	deleted bool
}

func newTracker() *tracker {
	return &tracker{services: map[string]map[string]expectation{}}
}

func parseRV(rv string) (uint64, bool) {
	n, err := strconv.ParseUint(rv, 10, 64)
	return n, err == nil
}

// wrote records a create or update the API server acknowledged.
func (t *tracker) wrote(svcKey string, slice *discoveryv1.EndpointSlice) {
	rv, ok := parseRV(slice.ResourceVersion)
	if !ok {
		return
	}
	t.set(svcKey, slice.Name, expectation{rv: rv})
}

// deletedSlice records a delete of the slice as last seen in the cache.
func (t *tracker) deletedSlice(svcKey string, slice *discoveryv1.EndpointSlice) {
	rv, _ := parseRV(slice.ResourceVersion)
	t.set(svcKey, slice.Name, expectation{rv: rv, deleted: true})
}

func (t *tracker) set(svcKey, name string, e expectation) {
	t.mu.Lock()
	defer t.mu.Unlock()
	m := t.services[svcKey]
	if m == nil {
		m = map[string]expectation{}
		t.services[svcKey] = m
	}
	m[name] = e
}

// observedDelete drops what was expected of a slice the cache saw go away:
// whoever deleted it, waiting for it would wait forever.
func (t *tracker) observedDelete(svcKey, name string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if m := t.services[svcKey]; m != nil {
		delete(m, name)
		if len(m) == 0 {
			delete(t.services, svcKey)
		}
	}
}

// forget drops everything about a Service.
func (t *tracker) forget(svcKey string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.services, svcKey)
}

// stale reports whether the cached slices of a Service are older than what
// this controller wrote; expectations the cache has caught up with are
// dropped on the way.
func (t *tracker) stale(svcKey string, cached []*discoveryv1.EndpointSlice) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	m := t.services[svcKey]
	if len(m) == 0 {
		return false
	}
	byName := make(map[string]*discoveryv1.EndpointSlice, len(cached))
	for _, s := range cached {
		byName[s.Name] = s
	}
	isStale := false
	for name, e := range m {
		s, present := byName[name]
		var rv uint64
		if present {
			rv, _ = parseRV(s.ResourceVersion)
		}
		switch {
		case e.deleted && present && rv <= e.rv:
			isStale = true
		case !e.deleted && (!present || rv < e.rv):
			isStale = true
		default:
			delete(m, name)
		}
	}
	if len(m) == 0 {
		delete(t.services, svcKey)
	}
	return isStale
}
