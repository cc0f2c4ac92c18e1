package statefulset

import (
	"context"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/wasmkube/wasmkube/control/controllers/framework"
	"github.com/wasmkube/wasmkube/internal/simnode"
	"github.com/wasmkube/wasmkube/internal/testcluster"
)

// startCluster runs a real API server, two simulated nodes that bind pods
// and turn them Ready after a delay, and the StatefulSet controller.
func startCluster(t *testing.T) kubernetes.Interface {
	t.Helper()
	_, cs := testcluster.Start(t)
	testcluster.StartNodes(t, cs, simnode.Options{
		Bind: true, ReadyDelay: 300 * time.Millisecond,
		Nodes: []simnode.NodeSpec{{Name: "n1"}, {Name: "n2"}},
	})
	testcluster.RunControllers(t, cs, map[string]framework.Starter{"statefulset": Starter()})
	return cs
}

func newSet(name string, replicas int32) *appsv1.StatefulSet {
	return &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: appsv1.StatefulSetSpec{
			Replicas:    ptr.To(replicas),
			ServiceName: name,
			Selector:    &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "c", Image: "nginx:1",
					VolumeMounts: []corev1.VolumeMount{{Name: "www", MountPath: "/data"}},
				}}},
			},
			VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{
				ObjectMeta: metav1.ObjectMeta{Name: "www"},
				Spec: corev1.PersistentVolumeClaimSpec{
					AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
					Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{
						corev1.ResourceStorage: resource.MustParse("1Gi"),
					}},
				},
			}},
		},
	}
}

// podEvent is one watch event on a pod, in the order the API server
// committed them.
type podEvent struct {
	typ      watch.EventType
	name     string
	ready    bool
	deleting bool
	image    string
}

type recorder struct {
	mu     sync.Mutex
	events []podEvent
}

func (r *recorder) snapshot() []podEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]podEvent(nil), r.events...)
}

// recordPods watches the pods of app=name until the test ends.
func recordPods(t *testing.T, cs kubernetes.Interface, name string) *recorder {
	t.Helper()
	w, err := cs.CoreV1().Pods("default").Watch(context.Background(), metav1.ListOptions{LabelSelector: "app=" + name})
	if err != nil {
		t.Fatal(err)
	}
	r := &recorder{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range w.ResultChan() {
			p, ok := ev.Object.(*corev1.Pod)
			if !ok {
				continue
			}
			r.mu.Lock()
			r.events = append(r.events, podEvent{
				typ: ev.Type, name: p.Name, ready: runningAndReady(p),
				deleting: p.DeletionTimestamp != nil, image: p.Spec.Containers[0].Image,
			})
			r.mu.Unlock()
		}
	}()
	t.Cleanup(func() { w.Stop(); <-done })
	return r
}

// firstIndex is the position of the first event matching f, or -1.
func firstIndex(evs []podEvent, f func(podEvent) bool) int {
	for i, e := range evs {
		if f(e) {
			return i
		}
	}
	return -1
}

func waitSet(ctx context.Context, t *testing.T, cs kubernetes.Interface, name string, ok func(*appsv1.StatefulSet) bool) *appsv1.StatefulSet {
	t.Helper()
	var last *appsv1.StatefulSet
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 40*time.Second, true, func(ctx context.Context) (bool, error) {
		got, err := cs.AppsV1().StatefulSets("default").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		last = got
		return got.Status.ObservedGeneration == got.Generation && ok(got), nil
	})
	if err != nil {
		t.Fatalf("statefulset %s: status %+v: %v", name, last.Status, err)
	}
	return last
}

func TestOrderedReadyScaleUpDownAndClaims(t *testing.T) {
	cs := startCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rec := recordPods(t, cs, "web")
	if _, err := cs.AppsV1().StatefulSets("default").Create(ctx, newSet("web", 3), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cs.AppsV1().StatefulSets("default").Delete(context.Background(), "web", metav1.DeleteOptions{})
	})
	waitSet(ctx, t, cs, "web", func(s *appsv1.StatefulSet) bool {
		return s.Status.Replicas == 3 && s.Status.ReadyReplicas == 3 && s.Status.AvailableReplicas == 3 &&
			s.Status.CurrentReplicas == 3 && s.Status.UpdatedReplicas == 3 && s.Status.CurrentRevision != ""
	})
	evs := rec.snapshot()
	for i, prev := range []string{"web-0", "web-1"} {
		next := []string{"web-1", "web-2"}[i]
		created := firstIndex(evs, func(e podEvent) bool { return e.name == next && e.typ == watch.Added })
		ready := firstIndex(evs, func(e podEvent) bool { return e.name == prev && e.ready })
		if created < 0 || ready < 0 || ready > created {
			t.Errorf("%s created at event %d, %s Running and Ready at event %d: want readiness first (%+v)", next, created, prev, ready, evs)
		}
	}

	pod, err := cs.CoreV1().Pods("default").Get(ctx, "web-1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if pod.Spec.Hostname != "web-1" || pod.Spec.Subdomain != "web" {
		t.Errorf("web-1 hostname %q subdomain %q, want web-1 and web", pod.Spec.Hostname, pod.Spec.Subdomain)
	}
	if pod.Labels[appsv1.StatefulSetPodNameLabel] != "web-1" || pod.Labels[appsv1.PodIndexLabel] != "1" {
		t.Errorf("web-1 identity labels = %v", pod.Labels)
	}
	var claim string
	for _, v := range pod.Spec.Volumes {
		if v.Name == "www" && v.PersistentVolumeClaim != nil {
			claim = v.PersistentVolumeClaim.ClaimName
		}
	}
	if claim != "www-web-1" {
		t.Errorf("web-1 volume www claim = %q, want www-web-1", claim)
	}
	for _, n := range []string{"www-web-0", "www-web-1", "www-web-2"} {
		pvc, err := cs.CoreV1().PersistentVolumeClaims("default").Get(ctx, n, metav1.GetOptions{})
		if err != nil {
			t.Errorf("claim %s: %v", n, err)
			continue
		}
		if pvc.Labels["app"] != "web" {
			t.Errorf("claim %s labels %v, want the selector's app=web", n, pvc.Labels)
		}
	}

	set, err := cs.AppsV1().StatefulSets("default").Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	set.Spec.Replicas = ptr.To[int32](1)
	if _, err := cs.AppsV1().StatefulSets("default").Update(ctx, set, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitSet(ctx, t, cs, "web", func(s *appsv1.StatefulSet) bool {
		return s.Status.Replicas == 1 && s.Status.ReadyReplicas == 1
	})
	evs = rec.snapshot()
	gone2 := firstIndex(evs, func(e podEvent) bool { return e.name == "web-2" && e.typ == watch.Deleted })
	dying1 := firstIndex(evs, func(e podEvent) bool { return e.name == "web-1" && (e.deleting || e.typ == watch.Deleted) })
	if gone2 < 0 || dying1 < 0 || dying1 < gone2 {
		t.Errorf("web-2 gone at event %d, web-1 deletion began at event %d: want web-2 gone first", gone2, dying1)
	}
	if i := firstIndex(evs, func(e podEvent) bool { return e.name == "web-0" && (e.deleting || e.typ == watch.Deleted) }); i >= 0 {
		t.Errorf("web-0 was deleted (event %d)", i)
	}
	if _, err := cs.CoreV1().PersistentVolumeClaims("default").Get(ctx, "www-web-2", metav1.GetOptions{}); err != nil {
		t.Errorf("claim www-web-2 after scale down: %v, want it retained", err)
	}
	testcluster.WaitEvent(ctx, t, cs, "web", "SuccessfulCreate", "create Pod web-0 in StatefulSet web successful")
	testcluster.WaitEvent(ctx, t, cs, "web", "SuccessfulDelete", "delete Pod web-2 in StatefulSet web successful")
}

func TestPartitionedRollingUpdate(t *testing.T) {
	cs := startCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rec := recordPods(t, cs, "db")
	set := newSet("db", 3)
	set.Spec.PodManagementPolicy = appsv1.ParallelPodManagement
	set.Spec.UpdateStrategy = appsv1.StatefulSetUpdateStrategy{
		Type:          appsv1.RollingUpdateStatefulSetStrategyType,
		RollingUpdate: &appsv1.RollingUpdateStatefulSetStrategy{Partition: ptr.To[int32](1)},
	}
	if _, err := cs.AppsV1().StatefulSets("default").Create(ctx, set, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cs.AppsV1().StatefulSets("default").Delete(context.Background(), "db", metav1.DeleteOptions{})
	})
	first := waitSet(ctx, t, cs, "db", func(s *appsv1.StatefulSet) bool { return s.Status.ReadyReplicas == 3 })
	oldRev := first.Status.CurrentRevision

	first.Spec.Template.Spec.Containers[0].Image = "nginx:2"
	if _, err := cs.AppsV1().StatefulSets("default").Update(ctx, first, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	mid := waitSet(ctx, t, cs, "db", func(s *appsv1.StatefulSet) bool {
		return s.Status.UpdatedReplicas == 2 && s.Status.ReadyReplicas == 3 && s.Status.CurrentReplicas == 1
	})
	if mid.Status.CurrentRevision != oldRev || mid.Status.UpdateRevision == oldRev {
		t.Errorf("mid-rollout revisions current %q update %q, want current %q and a new update revision",
			mid.Status.CurrentRevision, mid.Status.UpdateRevision, oldRev)
	}
	for name, image := range map[string]string{"db-0": "nginx:1", "db-1": "nginx:2", "db-2": "nginx:2"} {
		p, err := cs.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if p.Spec.Containers[0].Image != image {
			t.Errorf("%s image %s, want %s with partition 1", name, p.Spec.Containers[0].Image, image)
		}
	}
	evs := rec.snapshot()
	dying2 := firstIndex(evs, func(e podEvent) bool { return e.name == "db-2" && e.deleting })
	dying1 := firstIndex(evs, func(e podEvent) bool { return e.name == "db-1" && e.deleting })
	ready2 := firstIndex(evs, func(e podEvent) bool { return e.name == "db-2" && e.ready && e.image == "nginx:2" })
	if dying2 < 0 || dying1 < 0 || ready2 < 0 || !(dying2 < ready2 && ready2 < dying1) {
		t.Errorf("db-2 deleted at %d and back Ready at %d, db-1 deleted at %d: want the highest ordinal updated first, one at a time",
			dying2, ready2, dying1)
	}

	mid.Spec.UpdateStrategy.RollingUpdate.Partition = ptr.To[int32](0)
	if _, err := cs.AppsV1().StatefulSets("default").Update(ctx, mid, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	done := waitSet(ctx, t, cs, "db", func(s *appsv1.StatefulSet) bool {
		return s.Status.UpdatedReplicas == 3 && s.Status.ReadyReplicas == 3 && s.Status.CurrentRevision == s.Status.UpdateRevision
	})
	if done.Status.CurrentRevision == oldRev {
		t.Errorf("current revision still %s after the rollout", oldRev)
	}
	revs, err := cs.AppsV1().ControllerRevisions("default").List(ctx, metav1.ListOptions{LabelSelector: "app=db"})
	if err != nil {
		t.Fatal(err)
	}
	if len(revs.Items) != 2 {
		t.Errorf("%d controller revisions, want 2", len(revs.Items))
	}
}
