package storage

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Compaction tests are not parallel: compacting affects every prefix.

func TestCompactExpiresWatchAndList(t *testing.T) {
	f := newFixture(t)
	ctx := ctxT(t)
	old := f.create(newPod("ns1", "a", nil, "", ""))
	if _, err := f.s.GuaranteedUpdate(ctx, f.key("ns1", "a"), setPhase(corev1.PodRunning)); err != nil {
		t.Fatal(err)
	}
	cur := f.create(newPod("ns1", "b", nil, "", ""))
	rev, err := f.b.Compact(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rev < mustInt(t, cur.ResourceVersion) {
		t.Fatalf("compacted at %d, before the last write %s", rev, cur.ResourceVersion)
	}

	// Watch from before the compaction: 410, even though the buffer has it.
	w, err := f.s.Watch(ctx, f.prefix, WatchOptions{ResourceVersion: old.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	expectExpired(t, w)

	// Exact list from before the compaction: 410.
	_, err = f.s.List(ctx, f.prefix, ListOptions{ResourceVersion: old.ResourceVersion, ResourceVersionMatch: metav1.ResourceVersionMatchExact})
	if !apierrors.IsResourceExpired(err) && !apierrors.IsGone(err) {
		t.Fatalf("exact list before compaction: %v, want 410", err)
	}

	// Watching from the compaction revision itself still works: nothing
	// after it was removed.
	w2, err := f.s.Watch(ctx, f.prefix, WatchOptions{ResourceVersion: cur.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Stop()
	f.create(newPod("ns1", "c", nil, "", ""))
	expectEvent(t, w2, "ADDED", "c")
}

func TestCompactExpiresContinue(t *testing.T) {
	f := newFixture(t)
	ctx := ctxT(t)
	for _, n := range []string{"a", "b", "c", "d"} {
		f.create(newPod("ns1", n, nil, "", ""))
	}
	page, err := f.s.List(ctx, f.prefix, ListOptions{Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	if page.Continue == "" {
		t.Fatal("no continue token")
	}
	// Move past the page's revision, then compact it away.
	f.create(newPod("ns1", "e", nil, "", ""))
	if _, err := f.b.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	_, err = f.s.List(ctx, f.prefix, ListOptions{Limit: 2, Continue: page.Continue})
	if !apierrors.IsResourceExpired(err) {
		t.Fatalf("stale continue: %v, want 410 Expired", err)
	}
	st := err.(apierrors.APIStatus).Status()
	if st.Code != 410 || st.Message != inconsistentContinue {
		t.Fatalf("status %d %q", st.Code, st.Message)
	}
	if !strings.Contains(st.Message, "objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.") {
		t.Fatalf("message %q", st.Message)
	}
	// The token in the error resumes at the latest revision, inconsistently.
	if st.ListMeta.Continue == "" {
		t.Fatal("no resume token in the 410")
	}
	rest, err := f.s.List(ctx, f.prefix, ListOptions{Continue: st.ListMeta.Continue})
	if err != nil {
		t.Fatal(err)
	}
	if got := names(rest); strings.Join(got, ",") != "ns1/c,ns1/d,ns1/e" {
		t.Fatalf("resumed list = %v", got)
	}
}

func TestRunCompactor(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithCancel(ctxT(t))
	done := make(chan struct{})
	go func() {
		f.b.RunCompactor(ctx, 100*time.Millisecond)
		close(done)
	}()
	old := f.create(newPod("ns1", "a", nil, "", ""))
	// Keep writing so each round has a newer revision to compact next time.
	deadline := time.Now().Add(10 * time.Second)
	for {
		f.create(newPod("ns1", "w"+time.Now().Format("150405.000000000"), nil, "", ""))
		_, err := f.s.List(ctx, f.prefix, ListOptions{ResourceVersion: old.ResourceVersion, ResourceVersionMatch: metav1.ResourceVersionMatchExact})
		if apierrors.IsResourceExpired(err) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("the compactor never compacted")
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("RunCompactor did not return after cancel")
	}
}

// Closing the backend ends every goroutine it started: caches, etcd watch
// streams and watchers.
func TestNoGoroutineLeak(t *testing.T) {
	time.Sleep(100 * time.Millisecond)
	before := runtime.NumGoroutine()
	b := NewBackend(testClient, WithBookmarkInterval(20*time.Millisecond))
	ctx := ctxT(t)
	var stores []Interface
	for i := 0; i < 3; i++ {
		s := b.Resource(podConfig("/registry/leak" + string(rune('a'+i)) + "/"))
		stores = append(stores, s)
		if _, err := s.Create(ctx, "/registry/leak"+string(rune('a'+i))+"/ns/p", newPod("ns", "p", nil, "", "")); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
		for j := 0; j < 10; j++ {
			w, err := s.Watch(ctx, "/registry/leak"+string(rune('a'+i))+"/", WatchOptions{ResourceVersion: "", AllowBookmarks: true})
			if err != nil {
				t.Fatal(err)
			}
			if j%2 == 0 {
				defer w.Stop() // half stopped by the caller after Close
			}
		}
	}
	if _, err := stores[0].List(ctx, "/registry/leaka/", ListOptions{}); err != nil {
		t.Fatal(err)
	}
	if runtime.NumGoroutine() <= before {
		t.Fatal("the backend started no goroutines?")
	}
	b.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= before {
			break
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines before, %d after Close:\n%s", before, n, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}
