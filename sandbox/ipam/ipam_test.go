package ipam

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

func TestAllocateSkipsGatewayAndPersists(t *testing.T) {
	dir := t.TempDir()
	a, err := New(dir, "10.244.7.0/24")
	if err != nil {
		t.Fatal(err)
	}
	if gw := a.Gateway(); gw.String() != "10.244.7.1/24" {
		t.Fatalf("gateway = %s, want 10.244.7.1/24", gw.String())
	}
	ipA, err := a.Allocate("pod-a")
	if err != nil {
		t.Fatal(err)
	}
	if ipA.String() != "10.244.7.2/24" {
		t.Fatalf("first pod IP = %s, want 10.244.7.2/24", ipA.String())
	}
	data, err := os.ReadFile(filepath.Join(dir, "10.244.7.2"))
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != "pod-a\n" {
		t.Fatalf("claim file = %q, want %q", data, "pod-a\n")
	}
	again, err := a.Allocate("pod-a")
	if err != nil || !again.IP.Equal(ipA.IP) {
		t.Fatalf("re-allocate for the same owner = %v, %v; want %s", again, err, ipA.IP)
	}

	// A restarted agent starts with an empty cursor; the directory alone
	// must keep it from reusing pod-a's address.
	b, err := New(dir, "10.244.7.0/24")
	if err != nil {
		t.Fatal(err)
	}
	ipB, err := b.Allocate("pod-b")
	if err != nil {
		t.Fatal(err)
	}
	if ipB.IP.Equal(ipA.IP) {
		t.Fatalf("second allocator handed out %s again", ipB.IP)
	}
	owners, err := b.Owners()
	if err != nil {
		t.Fatal(err)
	}
	if len(owners) != 2 || !owners["pod-a"][0].Equal(ipA.IP) || !owners["pod-b"][0].Equal(ipB.IP) {
		t.Fatalf("owners = %v", owners)
	}

	if err := b.Release(ipA.IP); err != nil {
		t.Fatal(err)
	}
	if err := b.Release(ipA.IP); err != nil {
		t.Fatalf("second release: %v", err)
	}
	if err := b.ReleaseOwner("pod-b"); err != nil {
		t.Fatal(err)
	}
	left, err := a.Allocations()
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Fatalf("allocations after release = %v", left)
	}
}

func TestExhaustionAndConcurrency(t *testing.T) {
	dir := t.TempDir()
	// A /28 has 16 addresses: network, gateway, 13 pod addresses, broadcast.
	allocs := make([]*Allocator, 3)
	for i := range allocs {
		a, err := New(dir, "10.244.9.0/28")
		if err != nil {
			t.Fatal(err)
		}
		allocs[i] = a
	}
	var mu sync.Mutex
	seen := map[string]string{}
	var wg sync.WaitGroup
	for i := 0; i < 13; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			owner := fmt.Sprintf("pod-%d", i)
			ip, err := allocs[i%len(allocs)].Allocate(owner)
			if err != nil {
				t.Errorf("allocate %s: %v", owner, err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if prev, dup := seen[ip.IP.String()]; dup {
				t.Errorf("%s handed to both %s and %s", ip.IP, prev, owner)
			}
			seen[ip.IP.String()] = owner
		}(i)
	}
	wg.Wait()
	for ip := range seen {
		p := net.ParseIP(ip).To4()
		if p[3] < 2 || p[3] > 14 {
			t.Errorf("address %s outside the pod range .2-.14", ip)
		}
	}
	if _, err := allocs[0].Allocate("one-too-many"); !errors.Is(err, ErrExhausted) {
		t.Fatalf("allocate in a full range: err = %v, want ErrExhausted", err)
	}
}

func TestRejectsBadInput(t *testing.T) {
	if _, err := New(t.TempDir(), "fd00::/64"); err == nil {
		t.Fatal("IPv6 range accepted")
	}
	a, err := New(t.TempDir(), "10.244.3.0/24")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Allocate(""); err == nil {
		t.Fatal("empty owner accepted")
	}
	if err := a.Release(net.ParseIP("10.9.9.9")); err == nil {
		t.Fatal("release outside the range accepted")
	}
}
