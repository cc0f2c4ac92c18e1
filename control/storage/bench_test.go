package storage

import (
	"context"
	"encoding/json"
	"fmt"
	goruntime "runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// BenchmarkWatchFanOut measures one write reaching 100 watchers: ns/op is
// write plus delivery to all, fanout-µs the time from the write's return to
// the last watcher receiving it.
func BenchmarkWatchFanOut(b *testing.B) {
	f := newFixture(b)
	ctx := context.Background()
	start := f.create(newPod("ns1", "p", map[string]string{"n": "0"}, "", ""))
	const n = 100
	received := make(chan time.Time, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		w, err := f.s.Watch(ctx, f.prefix, WatchOptions{ResourceVersion: start.ResourceVersion})
		if err != nil {
			b.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range w.ResultChan() {
				received <- time.Now()
			}
		}()
		defer w.Stop()
	}
	key := f.key("ns1", "p")
	var fanout time.Duration
	i := 0
	for b.Loop() {
		i++
		_, err := f.s.GuaranteedUpdate(ctx, key, func(o runtime.Object) (runtime.Object, error) {
			p := o.(*corev1.Pod)
			p.Labels["n"] = fmt.Sprint(i)
			return p, nil
		})
		if err != nil {
			b.Fatal(err)
		}
		written := time.Now()
		var last time.Time
		for j := 0; j < n; j++ {
			last = <-received
		}
		fanout += last.Sub(written)
	}
	b.ReportMetric(float64(fanout.Microseconds())/float64(b.N), "fanout-µs")
	b.StopTimer()
	f.b.Close()
	wg.Wait()
}

// seedPods writes n small pods straight into etcd, many per transaction.
func seedPods(b *testing.B, f *fixture, n int) {
	ctx := context.Background()
	var ops []clientv3.Op
	flush := func() {
		if len(ops) == 0 {
			return
		}
		if _, err := testClient.Txn(ctx).Then(ops...).Commit(); err != nil {
			b.Fatal(err)
		}
		ops = ops[:0]
	}
	for i := 0; i < n; i++ {
		p := newPod(fmt.Sprintf("ns%d", i%10), fmt.Sprintf("pod-%05d", i), map[string]string{"app": fmt.Sprint(i % 7)}, "node1", corev1.PodRunning)
		data, err := json.Marshal(p)
		if err != nil {
			b.Fatal(err)
		}
		ops = append(ops, clientv3.OpPut(f.key(p.Namespace, p.Name), string(data)))
		if len(ops) == 100 {
			flush()
		}
	}
	flush()
}

// BenchmarkListFromCache lists 10,000 small pods from the watch cache.
func BenchmarkListFromCache(b *testing.B) {
	f := newFixture(b)
	seedPods(b, f, 10000)
	ctx := context.Background()
	for _, rv := range []string{"0", ""} {
		b.Run("rv="+rv, func(b *testing.B) {
			for b.Loop() {
				res, err := f.s.List(ctx, f.prefix, ListOptions{ResourceVersion: rv})
				if err != nil {
					b.Fatal(err)
				}
				if len(res.Items) != 10000 {
					b.Fatalf("%d items", len(res.Items))
				}
			}
		})
	}
	b.Run("rv=0,limit=500", func(b *testing.B) {
		for b.Loop() {
			res, err := f.s.List(ctx, f.prefix, ListOptions{ResourceVersion: "0", Limit: 500})
			if err != nil || len(res.Items) != 500 {
				b.Fatal(res, err)
			}
		}
	})
}

// BenchmarkCreateParallel creates pods from 50 goroutines at once.
func BenchmarkCreateParallel(b *testing.B) {
	f := newFixture(b)
	var seq atomic.Int64
	b.SetParallelism(max(1, 50/runtimeGOMAXPROCS()))
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			i := seq.Add(1)
			p := newPod("ns1", fmt.Sprintf("p-%d", i), nil, "", "")
			if _, err := f.s.Create(ctx, f.key("ns1", p.Name), p); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func runtimeGOMAXPROCS() int { return goruntime.GOMAXPROCS(0) }
