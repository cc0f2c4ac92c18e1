package replicaset

import (
	"sync"
	"time"
)

// expectationsTimeout bounds how long a controller waits for events it
// expected: a lost watch event must not freeze a ReplicaSet forever.
const expectationsTimeout = 5 * time.Minute

// Expectations count the creations and deletions a controller has asked for
// and not yet seen in its informer, per controller key. Deletions are
// tracked by pod key, because a deleted pod is observed twice (when its
// deletionTimestamp is set and when it is gone) and must count once.
type Expectations struct {
	mu sync.Mutex
	m  map[string]*expectation
}

type expectation struct {
	adds     int64
	deleting map[string]bool
	at       time.Time
}

// NewExpectations returns an empty store.
func NewExpectations() *Expectations { return &Expectations{m: map[string]*expectation{}} }

// Satisfied reports whether key may act on what its informer shows.
func (e *Expectations) Satisfied(key string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	x, ok := e.m[key]
	if !ok {
		return true
	}
	if x.adds <= 0 && len(x.deleting) == 0 {
		return true
	}
	return time.Since(x.at) > expectationsTimeout
}

// ExpectCreations records n creations about to be made.
func (e *Expectations) ExpectCreations(key string, n int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.m[key] = &expectation{adds: int64(n), deleting: map[string]bool{}, at: time.Now()}
}

// ExpectDeletions records deletions of the pods with these keys.
func (e *Expectations) ExpectDeletions(key string, podKeys []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	x := &expectation{deleting: map[string]bool{}, at: time.Now()}
	for _, k := range podKeys {
		x.deleting[k] = true
	}
	e.m[key] = x
}

// CreationObserved lowers the pending creations by one (a pod was seen, or
// a creation failed and will never be seen).
func (e *Expectations) CreationObserved(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if x, ok := e.m[key]; ok {
		x.adds--
	}
}

// DeletionObserved marks the pod's deletion as seen.
func (e *Expectations) DeletionObserved(key, podKey string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if x, ok := e.m[key]; ok {
		delete(x.deleting, podKey)
	}
}

// Forget drops what was expected for key (its object is gone).
func (e *Expectations) Forget(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.m, key)
}
