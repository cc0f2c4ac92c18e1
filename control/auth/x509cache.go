package auth

import (
	"crypto/sha256"
	"crypto/x509"
	"sync"
	"time"
)

// verifiedCacheSize bounds the verified-chain cache: an edge cluster has a
// handful of distinct client certificates (admin, nodes, components).
const verifiedCacheSize = 1024

// verifiedCache remembers chains that verified, so that the signature
// checks run once per certificate rather than once per request, as
// kube-apiserver's x509 authenticator caches them. An entry is valid until
// the earliest NotAfter in its chain, so an expired certificate is never
// accepted from the cache; a chain that failed is never cached.
type verifiedCache struct {
	mu      sync.Mutex
	max     int
	entries map[[sha256.Size]byte]verifiedEntry
}

type verifiedEntry struct {
	user     *User
	notAfter time.Time
}

func newVerifiedCache(max int) *verifiedCache {
	return &verifiedCache{max: max, entries: map[[sha256.Size]byte]verifiedEntry{}}
}

// chainKey hashes the whole presented chain: the same leaf with different
// intermediates is a different verification.
func chainKey(chain []*x509.Certificate) [sha256.Size]byte {
	h := sha256.New()
	for _, c := range chain {
		h.Write(c.Raw)
	}
	var k [sha256.Size]byte
	copy(k[:], h.Sum(nil))
	return k
}

func (c *verifiedCache) get(chain []*x509.Certificate, now time.Time) (*User, bool) {
	k := chainKey(chain)
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[k]
	if !ok {
		return nil, false
	}
	if !now.Before(e.notAfter) {
		delete(c.entries, k)
		return nil, false
	}
	return e.user, true
}

func (c *verifiedCache) put(chain []*x509.Certificate, u *User) {
	notAfter := chain[0].NotAfter
	for _, cert := range chain[1:] {
		if cert.NotAfter.Before(notAfter) {
			notAfter = cert.NotAfter
		}
	}
	k := chainKey(chain)
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.max {
		// Dropping everything is crude but bounded, and a full cache only
		// happens with more distinct certificates than any edge site has.
		clear(c.entries)
	}
	c.entries[k] = verifiedEntry{user: u, notAfter: notAfter}
}
