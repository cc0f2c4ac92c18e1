package storage

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/watch"
)

func TestFanOutManyWatchers(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := ctxT(t)
	start := f.create(newPod("ns1", "seed", nil, "", ""))
	const n = 100
	ws := make([]watch.Interface, n)
	for i := range ws {
		w, err := f.s.Watch(ctx, f.prefix, WatchOptions{ResourceVersion: start.ResourceVersion})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Stop()
		ws[i] = w
	}
	// One etcd watch serves them all.
	c := f.s.(*store).cache
	c.mu.RLock()
	registered := len(c.watchers)
	c.mu.RUnlock()
	if registered != n {
		t.Fatalf("%d watchers registered, want %d", registered, n)
	}
	p := f.create(newPod("ns1", "x", nil, "", ""))
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i, w := range ws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case ev := <-w.ResultChan():
				if ev.Type != watch.Added || rvOf(t, ev.Object) != p.ResourceVersion {
					errs <- fmt.Errorf("watcher %d got %s rv %s", i, ev.Type, rvOf(t, ev.Object))
				}
			case <-time.After(10 * time.Second):
				errs <- fmt.Errorf("watcher %d got nothing", i)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// A watcher nobody reads from must not hold back the others; it is closed
// once its buffer stays full.
func TestSlowWatcherDoesNotBlockOthers(t *testing.T) {
	t.Parallel()
	f := newFixture(t, WithWatcherBufferSize(4), WithSlowWatcherTimeout(20*time.Millisecond))
	ctx := ctxT(t)
	start := f.create(newPod("ns1", "seed", nil, "", ""))
	slow, err := f.s.Watch(ctx, f.prefix, WatchOptions{ResourceVersion: start.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Stop()
	fast, err := f.s.Watch(ctx, f.prefix, WatchOptions{ResourceVersion: start.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer fast.Stop()

	const events = 50
	got := make(chan int, 1)
	go func() {
		n := 0
		for n < events {
			select {
			case _, ok := <-fast.ResultChan():
				if !ok {
					got <- -1
					return
				}
				n++
			case <-time.After(10 * time.Second):
				got <- n
				return
			}
		}
		got <- n
	}()
	began := time.Now()
	for i := 0; i < events; i++ {
		f.create(newPod("ns1", fmt.Sprintf("p%02d", i), nil, "", corev1.PodRunning))
	}
	if n := <-got; n != events {
		t.Fatalf("fast watcher got %d of %d events", n, events)
	}
	if d := time.Since(began); d > 5*time.Second {
		t.Fatalf("fan-out took %s with a stuck watcher", d)
	}
	// The slow watcher was cut off: a few buffered events, then closed.
	received := 0
	deadline := time.After(5 * time.Second)
	for {
		select {
		case _, ok := <-slow.ResultChan():
			if !ok {
				if received >= events {
					t.Fatalf("slow watcher got all %d events, it was never cut off", received)
				}
				return
			}
			received++
		case <-deadline:
			t.Fatalf("slow watcher still open after %d events", received)
		}
	}
}

func TestWatchersOfDifferentResourcesAreIndependent(t *testing.T) {
	t.Parallel()
	a, b := newFixture(t), newFixture(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	wa, err := a.s.Watch(ctx, a.prefix, WatchOptions{ResourceVersion: "0"})
	if err != nil {
		t.Fatal(err)
	}
	defer wa.Stop()
	b.create(newPod("ns", "only-b", nil, "", ""))
	a.create(newPod("ns", "only-a", nil, "", ""))
	expectEvent(t, wa, watch.Added, "only-a")
}
