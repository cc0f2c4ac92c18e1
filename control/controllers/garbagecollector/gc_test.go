package garbagecollector

import (
	"context"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/wasmkube/wasmkube/control/controllers/framework"
	"github.com/wasmkube/wasmkube/control/controllers/replicaset"
	"github.com/wasmkube/wasmkube/internal/simnode"
	"github.com/wasmkube/wasmkube/internal/testcluster"
)

// startCluster runs the API server without its own controllers, simulated
// nodes that bind and run pods, the ReplicaSet controller and the collector.
func startCluster(t *testing.T) kubernetes.Interface {
	t.Helper()
	s, cs := testcluster.Start(t)
	testcluster.StartNodes(t, cs, simnode.Options{Bind: true, Nodes: []simnode.NodeSpec{{Name: "n1"}}})
	testcluster.RunControllers(t, cs, map[string]framework.Starter{
		"replicaset": replicaset.Starter(), "garbagecollector": Starter(s.LoopbackConfig()),
	})
	return cs
}

// eventually is testcluster.Eventually polling twice as often, which
// TestForegroundDeletion needs to see the owner waiting on its dependents.
func eventually(t *testing.T, what string, cond func(ctx context.Context) (bool, error)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var last error
	err := wait.PollUntilContextCancel(ctx, 50*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		ok, err := cond(ctx)
		last = err
		return ok && err == nil, nil
	})
	if err != nil {
		t.Fatalf("%s: not reached: %v (last error: %v)", what, err, last)
	}
}

// runningSet creates a ReplicaSet of two pods and waits for them.
func runningSet(t *testing.T, cs kubernetes.Interface, name string) *appsv1.ReplicaSet {
	t.Helper()
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.ReplicaSetSpec{
			Replicas: ptr.To[int32](2),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "nginx"}}},
			},
		},
	}
	rs, err := cs.AppsV1().ReplicaSets("default").Create(context.Background(), rs, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, name+" running", func(ctx context.Context) (bool, error) {
		got, err := cs.AppsV1().ReplicaSets("default").Get(ctx, name, metav1.GetOptions{})
		return err == nil && got.Status.ReadyReplicas == 2, err
	})
	return rs
}

func podsOf(ctx context.Context, cs kubernetes.Interface, app string) ([]corev1.Pod, error) {
	list, err := cs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=" + app})
	if err != nil {
		return nil, err
	}
	return list.Items, nil
}

func TestBackgroundDeletion(t *testing.T) {
	cs := startCluster(t)
	ctx := context.Background()
	runningSet(t, cs, "bg")
	err := cs.AppsV1().ReplicaSets("default").Delete(ctx, "bg", metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationBackground)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.AppsV1().ReplicaSets("default").Get(ctx, "bg", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("replicaset after background delete: %v, want NotFound at once", err)
	}
	eventually(t, "pods collected", func(ctx context.Context) (bool, error) {
		pods, err := podsOf(ctx, cs, "bg")
		return len(pods) == 0, err
	})
}

func TestForegroundDeletion(t *testing.T) {
	cs := startCluster(t)
	ctx := context.Background()
	runningSet(t, cs, "fg")
	err := cs.AppsV1().ReplicaSets("default").Delete(ctx, "fg", metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationForeground)})
	if err != nil {
		t.Fatal(err)
	}
	// The owner stays, marked, while its dependents go; when it is gone,
	// so are they.
	sawWaiting := false
	eventually(t, "owner gone after its pods", func(ctx context.Context) (bool, error) {
		rs, err := cs.AppsV1().ReplicaSets("default").Get(ctx, "fg", metav1.GetOptions{})
		if err == nil {
			if rs.DeletionTimestamp != nil && len(rs.Finalizers) == 1 && rs.Finalizers[0] == metav1.FinalizerDeleteDependents {
				sawWaiting = true
			}
			return false, nil
		}
		if !apierrors.IsNotFound(err) {
			return false, err
		}
		pods, err := podsOf(ctx, cs, "fg")
		if err != nil {
			return false, err
		}
		if len(pods) != 0 {
			t.Errorf("replicaset removed while %d of its pods remain", len(pods))
		}
		return true, nil
	})
	if !sawWaiting {
		t.Errorf("never saw the replicaset waiting with the %s finalizer", metav1.FinalizerDeleteDependents)
	}
}

func TestOrphanDeletion(t *testing.T) {
	cs := startCluster(t)
	ctx := context.Background()
	rs := runningSet(t, cs, "orph")
	before, err := podsOf(ctx, cs, "orph")
	if err != nil {
		t.Fatal(err)
	}
	err = cs.AppsV1().ReplicaSets("default").Delete(ctx, "orph", metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationOrphan)})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "owner gone", func(ctx context.Context) (bool, error) {
		_, err := cs.AppsV1().ReplicaSets("default").Get(ctx, "orph", metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	t.Cleanup(func() {
		_ = cs.CoreV1().Pods("default").DeleteCollection(context.Background(), metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: "app=orph"})
	})
	// Give the collector time to do something wrong.
	time.Sleep(time.Second)
	after, err := podsOf(ctx, cs, "orph")
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before) {
		t.Fatalf("%d pods after orphaning, want %d", len(after), len(before))
	}
	for _, p := range after {
		if p.DeletionTimestamp != nil {
			t.Errorf("orphaned pod %s is being deleted", p.Name)
		}
		for _, ref := range p.OwnerReferences {
			if ref.UID == rs.UID {
				t.Errorf("pod %s still references its deleted owner", p.Name)
			}
		}
	}
}

// TestDanglingReferenceRemoved checks that a dependent with one live and
// one vanished owner loses only the vanished reference.
func TestDanglingReferenceRemoved(t *testing.T) {
	cs := startCluster(t)
	ctx := context.Background()
	keeper, err := cs.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "keeper"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cs.CoreV1().ConfigMaps("default").Delete(context.Background(), "keeper", metav1.DeleteOptions{})
	})
	dep := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "dep", OwnerReferences: []metav1.OwnerReference{
		{APIVersion: "v1", Kind: "ConfigMap", Name: "keeper", UID: keeper.UID},
		{APIVersion: "v1", Kind: "ConfigMap", Name: "never-was", UID: "0b7c6a7e-0000-4000-8000-000000000000"},
	}}}
	if _, err := cs.CoreV1().Secrets("default").Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cs.CoreV1().Secrets("default").Delete(context.Background(), "dep", metav1.DeleteOptions{}) })
	eventually(t, "dangling reference dropped", func(ctx context.Context) (bool, error) {
		s, err := cs.CoreV1().Secrets("default").Get(ctx, "dep", metav1.GetOptions{})
		return err == nil && len(s.OwnerReferences) == 1 && s.OwnerReferences[0].UID == keeper.UID, err
	})
	// Deleting the last owner collects the dependent.
	if err := cs.CoreV1().ConfigMaps("default").Delete(ctx, "keeper", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "dependent collected", func(ctx context.Context) (bool, error) {
		_, err := cs.CoreV1().Secrets("default").Get(ctx, "dep", metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
}
