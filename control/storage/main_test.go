package storage

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/wasmkube/wasmkube/control/etcd"
)

// testClient talks to the package's one embedded etcd. Tests isolate
// themselves by resource prefix rather than by server.
var testClient *clientv3.Client

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "storage-etcd-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	e, err := etcd.Start(context.Background(), etcd.Config{DataDir: dir, LogFile: dir + "/etcd.log"})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer e.Close()
	testClient, err = etcd.NewClient(e.Endpoints())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer testClient.Close()
	return m.Run()
}

var prefixSeq atomic.Int64

func podConfig(prefix string) ResourceConfig {
	return ResourceConfig{
		GroupResource: schema.GroupResource{Resource: "pods"},
		Prefix:        prefix,
		NewFunc:       func() runtime.Object { return &corev1.Pod{} },
		NewListFunc:   func() runtime.Object { return &corev1.PodList{} },
		AttrFunc:      podAttrs,
	}
}

func podAttrs(obj runtime.Object) (labels.Set, fields.Set, error) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return nil, nil, fmt.Errorf("not a pod: %T", obj)
	}
	return labels.Set(p.Labels), fields.Set{
		"metadata.name":      p.Name,
		"metadata.namespace": p.Namespace,
		"spec.nodeName":      p.Spec.NodeName,
		"status.phase":       string(p.Status.Phase),
	}, nil
}

// fixture is one test's backend and pod store under a prefix of its own.
type fixture struct {
	t      testing.TB
	b      *Backend
	s      Interface
	prefix string
}

func newFixture(t testing.TB, opts ...Option) *fixture {
	t.Helper()
	name := strings.NewReplacer("/", "-", " ", "-").Replace(strings.ToLower(t.Name()))
	prefix := fmt.Sprintf("/registry/%s-%d/", name, prefixSeq.Add(1))
	b := NewBackend(testClient, opts...)
	t.Cleanup(b.Close)
	s := b.Resource(podConfig(prefix))
	// The watch cache starts listing in the background. Writes made before
	// its list are part of its initial state, not of its event ring, so a
	// test that watches from the version of such a write would get a 410,
	// as a client of a server that just started would. Wait for it.
	w, err := s.Watch(context.Background(), prefix, WatchOptions{ResourceVersion: "0"})
	if err != nil {
		t.Fatalf("watch cache of %s not ready: %v", prefix, err)
	}
	w.Stop()
	return &fixture{t: t, b: b, s: s, prefix: prefix}
}

func (f *fixture) key(ns, name string) string { return f.prefix + ns + "/" + name }

func newPod(ns, name string, lbls map[string]string, node string, phase corev1.PodPhase) *corev1.Pod {
	return &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{Kind: "Pod", APIVersion: "v1"},
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: lbls},
		Spec:       corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
		Status:     corev1.PodStatus{Phase: phase},
	}
}

func (f *fixture) create(p *corev1.Pod) *corev1.Pod {
	f.t.Helper()
	out, err := f.s.Create(context.Background(), f.key(p.Namespace, p.Name), p)
	if err != nil {
		f.t.Fatalf("create %s/%s: %v", p.Namespace, p.Name, err)
	}
	return out.(*corev1.Pod)
}

func rvOf(t testing.TB, obj runtime.Object) string {
	t.Helper()
	acc, err := meta.Accessor(obj)
	if err != nil {
		t.Fatal(err)
	}
	return acc.GetResourceVersion()
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// next returns the next event or fails after a timeout.
func next(t testing.TB, w watch.Interface) watch.Event {
	t.Helper()
	select {
	case ev, ok := <-w.ResultChan():
		if !ok {
			t.Fatal("watch closed unexpectedly")
		}
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("timed out waiting for a watch event")
	}
	return watch.Event{}
}

// expectEvent asserts the type and pod name of the next event.
func expectEvent(t testing.TB, w watch.Interface, typ watch.EventType, name string) *corev1.Pod {
	t.Helper()
	ev := next(t, w)
	if ev.Type != typ {
		t.Fatalf("event type = %s (%#v), want %s", ev.Type, ev.Object, typ)
	}
	p, ok := ev.Object.(*corev1.Pod)
	if !ok {
		t.Fatalf("event object is %T", ev.Object)
	}
	if name != "" && p.Name != name {
		t.Fatalf("%s event for %q, want %q", typ, p.Name, name)
	}
	return p
}

// expectNone asserts that no event arrives within d.
func expectNone(t testing.TB, w watch.Interface, d time.Duration) {
	t.Helper()
	select {
	case ev, ok := <-w.ResultChan():
		if ok {
			t.Fatalf("unexpected event %s %#v", ev.Type, ev.Object)
		}
		t.Fatal("watch closed unexpectedly")
	case <-time.After(d):
	}
}
