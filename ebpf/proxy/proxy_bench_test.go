package proxy

import (
	"context"
	"fmt"
	"net/netip"
	slices2 "slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/wasmkube/wasmkube/ebpf/lb"
	"github.com/wasmkube/wasmkube/internal/testcluster"
)

// BenchmarkProxySync measures the proxy at 10,000 Services of three
// endpoints, over a recording datapath (fake) and over the real BPF maps
// (maps), and with a real API server: the first full Reconcile from start
// (start-ms, the informers' initial lists included), and per iteration the
// time from an EndpointSlice update to its Service's frontends being
// written, taken from the sync hook: from the update's start (p50, p99) and
// from its return, once the change is committed (committed-p50, -p99).
//
//	go test -run '^$' -bench BenchmarkProxySync -benchtime 200x ./ebpf/proxy/
func BenchmarkProxySync(b *testing.B) {
	b.Run("fake", func(b *testing.B) { benchProxySync(b, fakeClient(benchObjects()), newFakeDatapath()) })
	b.Run("maps", func(b *testing.B) { benchProxySync(b, fakeClient(benchObjects()), benchMaps(b)) })
	// The whole path: the update written through a real API server and
	// etcd, its watch event, the informer, the workqueue, the maps.
	b.Run("apiserver+maps", func(b *testing.B) {
		_, cs := testcluster.Start(b)
		createAll(b, cs, benchObjects())
		benchProxySync(b, cs, benchMaps(b))
	})
}

func benchMaps(b *testing.B) *lb.Datapath {
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
	return dp
}

// fakeClient is the simple tracker: NewClientset's computes managed fields
// on every write, a millisecond that belongs to no real API server.
func fakeClient(objs []runtime.Object) kubernetes.Interface {
	return fake.NewSimpleClientset(objs...) //nolint:staticcheck // see above
}

// createAll writes the Services and slices through the API, 8 at a time.
func createAll(b *testing.B, cs kubernetes.Interface, objs []runtime.Object) {
	ctx := context.Background()
	work := make(chan runtime.Object)
	var wg sync.WaitGroup
	var failed atomic.Value
	for range 8 {
		wg.Go(func() {
			for o := range work {
				var err error
				switch o := o.(type) {
				case *corev1.Service:
					_, err = cs.CoreV1().Services(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
				case *discoveryv1.EndpointSlice:
					_, err = cs.DiscoveryV1().EndpointSlices(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
				}
				if err != nil {
					failed.CompareAndSwap(nil, err)
				}
			}
		})
	}
	for _, o := range objs {
		work <- o
	}
	close(work)
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
}

const syncBenchServices = 10000

func benchObjects() []runtime.Object {
	n := syncBenchServices
	var objs []runtime.Object
	for i := range n {
		name := fmt.Sprintf("svc-%05d", i)
		objs = append(objs, named(name, service(), offset(mustAddr("10.97.0.10"), i).String()),
			sliceOf(name, name+"-1", 8080,
				ep{ip: offset(mustAddr("10.244.0.10"), 3*i).String(), node: "n1"},
				ep{ip: offset(mustAddr("10.244.0.11"), 3*i).String(), node: "n1"},
				ep{ip: offset(mustAddr("10.244.0.12"), 3*i).String(), node: "n1"}))
	}
	return objs
}

func benchProxySync(b *testing.B, client kubernetes.Interface, dp Datapath) {
	const n = syncBenchServices
	type syncedAt struct {
		key string
		at  time.Time
	}
	synced := make(chan syncedAt, 16)
	startDone := make(chan time.Time, 1)
	p := New(client, dp, WithNodeName("n1"), WithSyncHook(func(key string, at time.Time) {
		if key == "" {
			startDone <- at
			return
		}
		synced <- syncedAt{key, at}
	}))
	ctx := context.Background()
	started := time.Now()
	runProxy(b, p)
	var reconciled time.Time
	select {
	case reconciled = <-startDone:
	case <-time.After(5 * time.Minute):
		b.Fatal("no first Reconcile")
	}
	slices := client.DiscoveryV1().EndpointSlices("default")
	// took counts from the update's start (the API write included);
	// committed from its return (the change exists, and travels by watch).
	var took, committed []time.Duration
	i := 0
	for b.Loop() {
		i++
		s := sliceOf("svc-00000", "svc-00000-1", 8080, ep{ip: offset(mustAddr("10.250.0.0"), i).String(), node: "n1"})
		t0 := time.Now()
		if _, err := slices.Update(ctx, s, metav1.UpdateOptions{}); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		for ev := range synced {
			if ev.key == "default/svc-00000" {
				took = append(took, ev.at.Sub(t0))
				committed = append(committed, max(ev.at.Sub(t1), 0))
				break
			}
		}
	}
	ms := func(d []time.Duration, q int) float64 {
		slices2.Sort(d)
		return float64(d[len(d)*q/100].Microseconds()) / 1000
	}
	b.ReportMetric(ms(took, 50), "p50-ms")
	b.ReportMetric(ms(took, 99), "p99-ms")
	b.ReportMetric(ms(committed, 50), "committed-p50-ms")
	b.ReportMetric(ms(committed, 99), "committed-p99-ms")
	b.ReportMetric(float64(reconciled.Sub(started).Microseconds())/1000, "start-ms")
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }
