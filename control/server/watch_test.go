package server

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"

	"github.com/wasmkube/wasmkube/control/etcd"
)

// startServer runs a real control plane (embedded etcd, HTTPS API) on free
// ports and returns an admin clientset.

func TestInformerSyncsAndSeesChanges(t *testing.T) {
	_, cs := startServer(t)
	ctx := testContext(t)
	if _, err := cs.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "before"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	factory := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithNamespace("default"))
	inf := factory.Core().V1().ConfigMaps().Informer()
	events := make(chan string, 16)
	_, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(o any) { events <- "add " + o.(*corev1.ConfigMap).Name },
		UpdateFunc: func(_, o any) {
			events <- "update " + o.(*corev1.ConfigMap).Name + " " + o.(*corev1.ConfigMap).Data["k"]
		},
		DeleteFunc: func(o any) {
			if tomb, ok := o.(cache.DeletedFinalStateUnknown); ok {
				o = tomb.Obj
			}
			events <- "delete " + o.(*corev1.ConfigMap).Name
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		t.Fatal("informer did not sync")
	}
	expect := func(want string) {
		t.Helper()
		select {
		case got := <-events:
			if got != want {
				t.Fatalf("event %q, want %q", got, want)
			}
		case <-ctx.Done():
			t.Fatalf("no event, want %q", want)
		}
	}
	expect("add before")
	cm, err := cs.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "live"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	expect("add live")
	cm.Data = map[string]string{"k": "v2"}
	if _, err := cs.CoreV1().ConfigMaps("default").Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	expect("update live v2")
	if err := cs.CoreV1().ConfigMaps("default").Delete(ctx, "live", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	expect("delete live")
}

func TestWatchResumesFromResourceVersion(t *testing.T) {
	_, cs := startServer(t)
	ctx := testContext(t)
	cms := cs.CoreV1().ConfigMaps("default")
	first, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "a"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"b", "c"} {
		if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	w, err := cms.Watch(ctx, metav1.ListOptions{ResourceVersion: first.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	for _, want := range []string{"b", "c"} {
		ev := <-w.ResultChan()
		if got := ev.Object.(*corev1.ConfigMap).Name; ev.Type != watch.Added || got != want {
			t.Fatalf("event %s %s, want ADDED %s (only changes after rv %s)", ev.Type, got, want, first.ResourceVersion)
		}
	}
}

func TestExpiredAfterCompaction(t *testing.T) {
	s, cs := startServer(t)
	ctx := testContext(t)
	cms := cs.CoreV1().ConfigMaps("default")
	for i := range 5 {
		if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprint("cm", i)}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	page, err := cms.List(ctx, metav1.ListOptions{Limit: 2})
	if err != nil || page.Continue == "" {
		t.Fatalf("first page: %v, continue %q", err, page.Continue)
	}
	old := page.ResourceVersion
	for i := range 3 {
		if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprint("later", i)}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Backend().Compact(ctx); err != nil {
		t.Fatalf("compact: %v", err)
	}
	w, err := cms.Watch(ctx, metav1.ListOptions{ResourceVersion: old})
	if err != nil {
		t.Fatalf("watch: %v", err)
	}
	defer w.Stop()
	ev := <-w.ResultChan()
	st, ok := ev.Object.(*metav1.Status)
	if ev.Type != watch.Error || !ok || st.Code != http.StatusGone {
		t.Fatalf("watch from a compacted rv: got %s %#v, want ERROR with 410", ev.Type, ev.Object)
	}
	_, err = cms.List(ctx, metav1.ListOptions{Limit: 2, Continue: page.Continue})
	if !apierrors.IsResourceExpired(err) && !apierrors.IsGone(err) {
		t.Fatalf("continue after compaction: got %v, want 410", err)
	}
}

// TestExternalEtcd runs two API servers on one etcd cluster of their own, as
// a bigger site would: what one writes, the other serves and watches.
func TestExternalEtcd(t *testing.T) {
	ctx := testContext(t)
	e, err := etcd.Start(ctx, etcd.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatalf("etcd: %v", err)
	}
	t.Cleanup(e.Close)
	start := func() kubernetes.Interface {
		s, err := Start(ctx, Options{DataDir: t.TempDir(), EtcdServers: e.Endpoints()})
		if err != nil {
			t.Fatalf("server on external etcd: %v", err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = s.Shutdown(ctx)
		})
		cs, err := kubernetes.NewForConfig(s.LoopbackConfig())
		if err != nil {
			t.Fatal(err)
		}
		return cs
	}
	first, second := start(), start()
	w, err := second.CoreV1().ConfigMaps("default").Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if _, err := first.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "shared"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for ev := range w.ResultChan() {
		if cm, ok := ev.Object.(*corev1.ConfigMap); ok && cm.Name == "shared" {
			break
		}
	}
	if _, err := second.CoreV1().ConfigMaps("default").Get(ctx, "shared", metav1.GetOptions{}); err != nil {
		t.Fatalf("second server does not serve the first's write: %v", err)
	}
}

func TestDeleteCollectionAndWatchList(t *testing.T) {
	_, cs := startServer(t)
	ctx := testContext(t)
	cms := cs.CoreV1().ConfigMaps("default")
	for _, name := range []string{"a", "b", "keep"} {
		labels := map[string]string{"batch": "x"}
		if name == "keep" {
			labels = nil
		}
		if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	// WatchList: the current state as ADDED, then the bookmark that ends it.
	w, err := cms.Watch(ctx, metav1.ListOptions{
		SendInitialEvents: ptr.To(true), AllowWatchBookmarks: true,
		ResourceVersionMatch: metav1.ResourceVersionMatchNotOlderThan,
	})
	if err != nil {
		t.Fatal(err)
	}
	var added []string
	for ev := range w.ResultChan() {
		if ev.Type == watch.Added {
			added = append(added, ev.Object.(*corev1.ConfigMap).Name)
			continue
		}
		cm, _ := ev.Object.(*corev1.ConfigMap)
		if ev.Type != watch.Bookmark || cm == nil || cm.Annotations[metav1.InitialEventsAnnotationKey] != "true" {
			t.Fatalf("after the initial events: %s %#v, want the initial-events-end bookmark", ev.Type, ev.Object)
		}
		break
	}
	w.Stop()
	if fmt.Sprint(added) != "[a b keep]" {
		t.Fatalf("initial events = %v", added)
	}

	if err := cms.DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: "batch=x"}); err != nil {
		t.Fatalf("deletecollection: %v", err)
	}
	left, err := cms.List(ctx, metav1.ListOptions{})
	if err != nil || len(left.Items) != 1 || left.Items[0].Name != "keep" {
		t.Fatalf("after deletecollection: %v %v", err, left)
	}

	// timeoutSeconds ends a watch on the server's side.
	start := time.Now()
	w, err = cms.Watch(ctx, metav1.ListOptions{ResourceVersion: left.ResourceVersion, TimeoutSeconds: ptr.To[int64](1)})
	if err != nil {
		t.Fatal(err)
	}
	for range w.ResultChan() {
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("a watch with timeoutSeconds=1 lasted %s", d)
	}
}
