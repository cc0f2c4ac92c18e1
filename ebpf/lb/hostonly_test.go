package lb

import (
	"net/netip"
	"testing"
)

// TestHostOnly: a host-only frontend is translated for sockets of the
// host's network namespace, and left alone in any other, where the same
// address means something else; an ordinary frontend is translated in both.
func TestHostOnly(t *testing.T) {
	e := newEnv(t)
	d := e.open(t)
	be := tcpBackend(t, "backend")
	hostOnly, everywhere := decoy(t, TCP), decoy(t, TCP)
	for f, s := range map[Frontend]Service{
		hostOnly:   {Backends: []Backend{be}, HostOnly: true},
		everywhere: {Backends: []Backend{be}},
	} {
		if err := d.Upsert(f, s); err != nil {
			t.Fatal(err)
		}
	}
	if got := lookupEntry(t, d, hostOnly); !got.HostOnly {
		t.Errorf("List lost HostOnly: %+v", got)
	}
	backend := netip.AddrPortFrom(be.Addr, be.Port).String()
	for _, tc := range []struct {
		f     Frontend
		netns bool
		want  string
	}{
		{hostOnly, false, "backend"},
		{everywhere, false, "backend"},
		{hostOnly, true, "inner-frontend"},
		{everywhere, true, "inner-backend"},
	} {
		res := e.run(t, childOp{Kind: "tcp", Target: tc.f.target(), Direct: backend, N: 3, Netns: tc.netns})
		for _, r := range res {
			if r.Err != "" || r.Reply != tc.want {
				t.Errorf("host-only %v, own netns %v: reply %q (%s), want %q", tc.f == hostOnly, tc.netns, r.Reply, r.Err, tc.want)
			}
		}
	}
}

func lookupEntry(t *testing.T, d *Datapath, f Frontend) Entry {
	t.Helper()
	es, err := d.List()
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		if e.Frontend == f {
			return e
		}
	}
	t.Fatalf("frontend %v not listed", f)
	return Entry{}
}
