package proxy

import (
	"context"
	"fmt"
	"net/netip"
	slices2 "slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/wasmkube/wasmkube/ebpf/lb"
)

// BenchmarkProxySync measures the proxy at 10,000 Services of three
// endpoints, over a recording datapath (fake) and over the real BPF maps
// (maps): the first full Reconcile from start (start-ms), and per iteration
// the time from an EndpointSlice update to its Service's frontends being
// written, taken from the sync hook (ns/op, and its p50 and p99).
//
//	go test -run '^$' -bench BenchmarkProxySync -benchtime 200x ./ebpf/proxy/
func BenchmarkProxySync(b *testing.B) {
	b.Run("fake", func(b *testing.B) { benchProxySync(b, newFakeDatapath()) })
	b.Run("maps", func(b *testing.B) {
		dir := fmt.Sprintf("%s/wasmkube-bench-%d", lb.BPFFS, time.Now().UnixNano())
		dp, err := lb.Open(dir)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() {
			dp.Close()
			if err := lb.Remove(dir); err != nil {
				b.Error(err)
			}
		})
		benchProxySync(b, dp)
	})
}

func benchProxySync(b *testing.B, dp Datapath) {
	const n = 10000
	var objs []runtime.Object
	for i := range n {
		name := fmt.Sprintf("svc-%05d", i)
		objs = append(objs, named(name, service(), offset(mustAddr("10.96.0.10"), i).String()),
			sliceOf(name, name+"-1", 8080,
				ep{ip: offset(mustAddr("10.244.0.10"), 3*i).String()},
				ep{ip: offset(mustAddr("10.244.0.11"), 3*i).String()},
				ep{ip: offset(mustAddr("10.244.0.12"), 3*i).String()}))
	}
	client := fake.NewClientset(objs...)
	synced := make(chan string, 16)
	startDone := make(chan time.Time, 1)
	p := New(client, dp, WithNodeName("n1"), WithSyncHook(func(key string, at time.Time) {
		if key == "" {
			startDone <- at
			return
		}
		synced <- key
	}))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	started := time.Now()
	go func() { done <- p.Run(ctx) }()
	b.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			b.Errorf("Run: %v", err)
		}
	})
	var reconciled time.Time
	select {
	case reconciled = <-startDone:
	case <-time.After(5 * time.Minute):
		b.Fatal("no first Reconcile")
	}
	slices := client.DiscoveryV1().EndpointSlices("default")
	var took []time.Duration
	i := 0
	for b.Loop() {
		i++
		s := sliceOf("svc-00000", "svc-00000-1", 8080, ep{ip: offset(mustAddr("10.250.0.0"), i).String()})
		t0 := time.Now()
		if _, err := slices.Update(ctx, s, metav1.UpdateOptions{}); err != nil {
			b.Fatal(err)
		}
		for key := range synced {
			if key == "default/svc-00000" {
				break
			}
		}
		took = append(took, time.Since(t0))
	}
	slices2.Sort(took)
	b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(took[len(took)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(reconciled.Sub(started).Microseconds())/1000, "start-ms")
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }
