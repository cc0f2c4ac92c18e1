package auth

import (
	"crypto/x509"
	"testing"
	"time"
)

func TestVerifiedCacheHonoursExpiry(t *testing.T) {
	now := time.Now()
	leaf := &x509.Certificate{Raw: []byte("leaf"), NotAfter: now.Add(time.Hour)}
	ca := &x509.Certificate{Raw: []byte("ca"), NotAfter: now.Add(time.Minute)}
	c := newVerifiedCache(2)
	c.put([]*x509.Certificate{leaf, ca}, &User{Name: "alice"})
	if u, ok := c.get([]*x509.Certificate{leaf, ca}, now); !ok || u.Name != "alice" {
		t.Fatalf("fresh entry: %v %v", u, ok)
	}
	if _, ok := c.get([]*x509.Certificate{leaf}, now); ok {
		t.Fatal("a different chain must not hit the entry of another")
	}
	if _, ok := c.get([]*x509.Certificate{leaf, ca}, now.Add(2*time.Minute)); ok {
		t.Fatal("an entry must expire with the earliest NotAfter of its chain")
	}
	for i := range 3 {
		c.put([]*x509.Certificate{{Raw: []byte{byte(i)}, NotAfter: now.Add(time.Hour)}}, &User{Name: "x"})
	}
	if len(c.entries) > 2 {
		t.Fatalf("cache holds %d entries, bound is 2", len(c.entries))
	}
}
