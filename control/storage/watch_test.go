package storage

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
)

func setPhase(phase corev1.PodPhase) UpdateFunc {
	return func(existing runtime.Object) (runtime.Object, error) {
		p := existing.(*corev1.Pod)
		p.Status.Phase = phase
		return p, nil
	}
}

func TestWatchFromResourceVersion(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := ctxT(t)
	a := f.create(newPod("ns1", "a", nil, "", corev1.PodPending))
	f.create(newPod("ns1", "b", nil, "", corev1.PodPending))
	if _, err := f.s.GuaranteedUpdate(ctx, f.key("ns1", "a"), setPhase(corev1.PodRunning)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.Delete(ctx, f.key("ns1", "b"), nil); err != nil {
		t.Fatal(err)
	}

	// From a's creation: everything after it, in order, from the buffer.
	w, err := f.s.Watch(ctx, f.prefix, WatchOptions{ResourceVersion: a.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	b := expectEvent(t, w, watch.Added, "b")
	up := expectEvent(t, w, watch.Modified, "a")
	if up.Status.Phase != corev1.PodRunning {
		t.Fatalf("modified phase %s", up.Status.Phase)
	}
	del := expectEvent(t, w, watch.Deleted, "b")
	if mustInt(t, del.ResourceVersion) <= mustInt(t, up.ResourceVersion) || mustInt(t, up.ResourceVersion) <= mustInt(t, b.ResourceVersion) {
		t.Fatalf("versions out of order: %s %s %s", b.ResourceVersion, up.ResourceVersion, del.ResourceVersion)
	}
	// Then live events.
	c := f.create(newPod("ns1", "c", nil, "", ""))
	if got := expectEvent(t, w, watch.Added, "c"); got.ResourceVersion != c.ResourceVersion {
		t.Fatalf("live event rv %s, want %s", got.ResourceVersion, c.ResourceVersion)
	}

	// A single key watches one object only, not its name-prefix siblings.
	f.create(newPod("ns1", "cc", nil, "", ""))
	one, err := f.s.Watch(ctx, f.key("ns1", "c"), WatchOptions{ResourceVersion: c.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer one.Stop()
	if _, err := f.s.GuaranteedUpdate(ctx, f.key("ns1", "c"), setPhase(corev1.PodFailed)); err != nil {
		t.Fatal(err)
	}
	expectEvent(t, one, watch.Modified, "c")
	expectNone(t, one, 200*time.Millisecond)
}

func TestWatchInitialState(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := ctxT(t)
	f.create(newPod("ns1", "a", nil, "", ""))
	f.create(newPod("ns2", "b", nil, "", ""))
	for _, rv := range []string{"", "0"} {
		w, err := f.s.Watch(ctx, f.prefix, WatchOptions{ResourceVersion: rv})
		if err != nil {
			t.Fatal(err)
		}
		expectEvent(t, w, watch.Added, "a")
		expectEvent(t, w, watch.Added, "b")
		expectNone(t, w, 100*time.Millisecond)
		w.Stop()
	}
	// Namespace prefix.
	w, err := f.s.Watch(ctx, f.prefix+"ns2/", WatchOptions{ResourceVersion: "0"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	expectEvent(t, w, watch.Added, "b")
	f.create(newPod("ns1", "c", nil, "", ""))
	f.create(newPod("ns2", "d", nil, "", ""))
	expectEvent(t, w, watch.Added, "d")

	// sendInitialEvents=false with rv "": no replay, only what comes next.
	no := false
	w2, err := f.s.Watch(ctx, f.prefix, WatchOptions{SendInitialEvents: &no})
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Stop()
	f.create(newPod("ns1", "e", nil, "", ""))
	expectEvent(t, w2, watch.Added, "e")
}

func TestWatchListBookmarks(t *testing.T) {
	t.Parallel()
	f := newFixture(t, WithBookmarkInterval(100*time.Millisecond))
	ctx := ctxT(t)
	f.create(newPod("ns1", "a", nil, "", ""))
	last := f.create(newPod("ns1", "b", nil, "", ""))
	yes := true
	w, err := f.s.Watch(ctx, f.prefix, WatchOptions{SendInitialEvents: &yes, AllowBookmarks: true})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	expectEvent(t, w, watch.Added, "a")
	expectEvent(t, w, watch.Added, "b")
	ev := next(t, w)
	if ev.Type != watch.Bookmark {
		t.Fatalf("after initial events got %s, want BOOKMARK", ev.Type)
	}
	p := ev.Object.(*corev1.Pod)
	if p.Annotations[metav1.InitialEventsAnnotationKey] != "true" {
		t.Fatalf("initial-events bookmark annotations = %v", p.Annotations)
	}
	if mustInt(t, p.ResourceVersion) < mustInt(t, last.ResourceVersion) {
		t.Fatalf("bookmark rv %s older than the last write %s", p.ResourceVersion, last.ResourceVersion)
	}
	if p.Name != "" || len(p.Spec.Containers) != 0 {
		t.Fatalf("bookmark carries more than a version: %+v", p)
	}

	// Writes elsewhere in etcd move the revision; periodic bookmarks carry it.
	other := newFixture(t)
	o := other.create(newPod("x", "y", nil, "", ""))
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ev := <-w.ResultChan():
			if ev.Type != watch.Bookmark {
				t.Fatalf("unexpected %s", ev.Type)
			}
			bp := ev.Object.(*corev1.Pod)
			if bp.Annotations[metav1.InitialEventsAnnotationKey] != "" {
				t.Fatal("periodic bookmark has the initial-events annotation")
			}
			if mustInt(t, bp.ResourceVersion) >= mustInt(t, o.ResourceVersion) {
				return
			}
		case <-deadline:
			t.Fatalf("no bookmark reached revision %s", o.ResourceVersion)
		}
	}
}

func TestWatchNoBookmarksUnlessAllowed(t *testing.T) {
	t.Parallel()
	f := newFixture(t, WithBookmarkInterval(50*time.Millisecond))
	ctx := ctxT(t)
	a := f.create(newPod("ns1", "a", nil, "", ""))
	w, err := f.s.Watch(ctx, f.prefix, WatchOptions{ResourceVersion: a.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	newFixture(t).create(newPod("x", "y", nil, "", ""))
	expectNone(t, w, 400*time.Millisecond)
}

// An object entering a watcher's selection is ADDED for it, one leaving it
// DELETED, the rest filtered out.
func TestWatchFilterTransitions(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := ctxT(t)
	start := f.create(newPod("ns1", "seed", nil, "", ""))
	w, err := f.s.Watch(ctx, f.prefix, WatchOptions{
		ResourceVersion: start.ResourceVersion,
		Predicate: Predicate{
			Label: labels.SelectorFromSet(labels.Set{"app": "web"}),
			Field: fields.OneTermEqualSelector("status.phase", "Running"),
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	key := f.key("ns1", "p")
	f.create(newPod("ns1", "p", map[string]string{"app": "web"}, "", corev1.PodPending)) // not matching
	f.create(newPod("ns1", "other", map[string]string{"app": "db"}, "", corev1.PodRunning))
	up, err := f.s.GuaranteedUpdate(ctx, key, setPhase(corev1.PodRunning)) // starts matching
	if err != nil {
		t.Fatal(err)
	}
	added := expectEvent(t, w, watch.Added, "p")
	if added.ResourceVersion != rvOf(t, up) {
		t.Fatalf("ADDED rv %s, want %s", added.ResourceVersion, rvOf(t, up))
	}
	if _, err := f.s.GuaranteedUpdate(ctx, key, func(o runtime.Object) (runtime.Object, error) {
		p := o.(*corev1.Pod)
		p.Spec.NodeName = "n1"
		return p, nil
	}); err != nil {
		t.Fatal(err)
	}
	expectEvent(t, w, watch.Modified, "p")
	left, err := f.s.GuaranteedUpdate(ctx, key, setPhase(corev1.PodSucceeded)) // stops matching
	if err != nil {
		t.Fatal(err)
	}
	gone := expectEvent(t, w, watch.Deleted, "p")
	if gone.ResourceVersion != rvOf(t, left) || gone.Status.Phase != corev1.PodRunning {
		t.Fatalf("DELETED on leaving: rv %s phase %s, want rv %s with the last matching state", gone.ResourceVersion, gone.Status.Phase, rvOf(t, left))
	}
	if _, err := f.s.Delete(ctx, key, nil); err != nil { // already outside: nothing
		t.Fatal(err)
	}
	expectNone(t, w, 200*time.Millisecond)

	// The same transitions replayed from the buffer.
	w2, err := f.s.Watch(ctx, f.prefix, WatchOptions{ResourceVersion: start.ResourceVersion, Predicate: Predicate{Field: fields.OneTermEqualSelector("status.phase", "Running")}})
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Stop()
	expectEvent(t, w2, watch.Added, "other")
	expectEvent(t, w2, watch.Added, "p")
	expectEvent(t, w2, watch.Modified, "p")
	expectEvent(t, w2, watch.Deleted, "p")
	expectNone(t, w2, 200*time.Millisecond)
}

func TestWatchStop(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	w1, err := f.s.Watch(ctx, f.prefix, WatchOptions{ResourceVersion: "0"})
	if err != nil {
		t.Fatal(err)
	}
	w2, err := f.s.Watch(context.Background(), f.prefix, WatchOptions{ResourceVersion: "0"})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	w2.Stop()
	for i, w := range []watch.Interface{w1, w2} {
		select {
		case _, ok := <-w.ResultChan():
			if ok {
				t.Fatalf("watch %d delivered an event after stop", i)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("watch %d not closed", i)
		}
	}
	c := f.s.(*store).cache
	deadline := time.Now().Add(5 * time.Second)
	for {
		c.mu.RLock()
		n := len(c.watchers)
		c.mu.RUnlock()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d watchers still registered", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// The buffer holds a bounded number of events; resuming from before it is
// 410 Expired.
func TestWatchTooOldForBuffer(t *testing.T) {
	t.Parallel()
	f := newFixture(t, WithEventBufferSize(5))
	ctx := ctxT(t)
	first := f.create(newPod("ns1", "p0", nil, "", ""))
	for i := 1; i < 10; i++ {
		f.create(newPod("ns1", "p"+strconv.Itoa(i), nil, "", ""))
	}
	// Make sure the cache has seen every write before asking.
	if _, err := f.s.List(ctx, f.prefix, ListOptions{}); err != nil {
		t.Fatal(err)
	}
	w, err := f.s.Watch(ctx, f.prefix, WatchOptions{ResourceVersion: first.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	expectExpired(t, w)
}

func expectExpired(t *testing.T, w watch.Interface) {
	t.Helper()
	ev := next(t, w)
	if ev.Type != watch.Error {
		t.Fatalf("got %s, want ERROR", ev.Type)
	}
	st, ok := ev.Object.(*metav1.Status)
	if !ok || st.Code != 410 || st.Reason != metav1.StatusReasonExpired {
		t.Fatalf("error object = %#v, want a 410 Expired Status", ev.Object)
	}
	select {
	case _, ok := <-w.ResultChan():
		if ok {
			t.Fatal("events after the error")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("watch not closed after the error")
	}
	if want := "too old resource version"; len(st.Message) < len(want) || st.Message[:len(want)] != want {
		t.Fatalf("message %q", st.Message)
	}
	_ = fmt.Sprint(st)
}

// Fan-out shares one object among all watchers of a change, instead of a
// copy per watcher, and hands out objects that already carry their type,
// so that consumers need not write to them.
func TestWatchObjectsAreSharedAndTyped(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := ctxT(t)
	f.create(newPod("ns1", "a", map[string]string{"k": "v"}, "", ""))
	var got []*corev1.Pod
	for range 2 {
		w, err := f.s.Watch(ctx, f.prefix, WatchOptions{ResourceVersion: "0"})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Stop()
		got = append(got, expectEvent(t, w, watch.Added, "a"))
	}
	if got[0] != got[1] {
		t.Fatal("two watchers of one change received different copies")
	}
	if got[0].Kind != "Pod" || got[0].APIVersion != "v1" {
		t.Fatalf("event object has no type: %q %q", got[0].APIVersion, got[0].Kind)
	}
}
