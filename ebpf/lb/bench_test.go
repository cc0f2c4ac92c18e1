package lb

import (
	"fmt"
	"testing"
)

// BenchmarkReconcile is the agent's full resync at start: from empty maps
// (every frontend written) and when everything is already programmed (an
// agent restart: nothing written).
func BenchmarkReconcile(b *testing.B) {
	const n = 10000
	e := newEnv(b)
	d, err := Open(e.pinDir)
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	want := frontends(n, 96, 3)

	b.Run("from-empty", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			if _, err := d.Reconcile(nil); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			changed, err := d.Reconcile(want)
			if err != nil {
				b.Fatal(err)
			}
			if changed != n {
				b.Fatalf("changed %d, want %d", changed, n)
			}
		}
	})
	b.Run("no-change", func(b *testing.B) {
		if _, err := d.Reconcile(want); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			changed, err := d.Reconcile(want)
			if err != nil {
				b.Fatal(err)
			}
			if changed != 0 {
				b.Fatalf("changed %d, want 0", changed)
			}
		}
	})
}

// BenchmarkUpsert is one Service's endpoints changing among 10,000
// programmed frontends.
func BenchmarkUpsert(b *testing.B) {
	e := newEnv(b)
	d, err := Open(e.pinDir)
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	want := frontends(10000, 96, 3)
	if _, err := d.Reconcile(want); err != nil {
		b.Fatal(err)
	}
	var f Frontend
	for f = range want {
		break
	}
	bes := want[f].Backends
	alt := [2]Service{want[f], {Backends: []Backend{bes[2], bes[0], bes[1]}}}
	i := 0
	for b.Loop() {
		if err := d.Upsert(f, alt[i%2]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkFirstConnect is what the socket hook adds to a TCP connect(2)
// on a fresh socket (the handshake over loopback included), with 10 and
// 10,000 frontends programmed; the connect goes to the frontend written
// last. Connects straight to the same backend, interleaved in the same
// child process, are the baseline.
func BenchmarkFirstConnect(b *testing.B) {
	for _, n := range []int{10, 10000} {
		b.Run(fmt.Sprintf("frontends=%d", n), func(b *testing.B) {
			e := newEnv(b)
			d := e.open(b)
			if _, err := d.Reconcile(frontends(n-1, 96, 3)); err != nil {
				b.Fatal(err)
			}
			f := decoy(b, TCP)
			be := tcpBackend(b, "a")
			if err := d.Upsert(f, Service{Backends: []Backend{be}}); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			res := e.run(b, childOp{Kind: "bench", Target: f.target(), Direct: be.target(), N: b.N})
			b.StopTimer()
			b.ReportMetric(res[0].FrontendNs, "ns/connect-frontend")
			b.ReportMetric(res[0].DirectNs, "ns/connect-direct")
		})
	}
}

func (b Backend) target() string {
	return Frontend{Addr: b.Addr, Port: b.Port}.target()
}
