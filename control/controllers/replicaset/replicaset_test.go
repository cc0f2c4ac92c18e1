package replicaset

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/wasmkube/wasmkube/control/controllers/framework"
	"github.com/wasmkube/wasmkube/internal/simnode"
	"github.com/wasmkube/wasmkube/internal/testcluster"
)

// startCluster runs a real API server, two simulated nodes that bind and
// run pods, and the ReplicaSet controller.
func startCluster(t *testing.T) kubernetes.Interface {
	t.Helper()
	_, cs := testcluster.Start(t)
	testcluster.StartNodes(t, cs, simnode.Options{Bind: true, Nodes: []simnode.NodeSpec{{Name: "n1"}, {Name: "n2"}}})
	testcluster.RunControllers(t, cs, map[string]framework.Starter{"replicaset": Starter()})
	return cs
}

func newRS(name string, replicas int32) *appsv1.ReplicaSet {
	return &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: appsv1.ReplicaSetSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "nginx"}}},
			},
		},
	}
}

// activePods lists the pods selected by app=name that are not being deleted.
func activePods(ctx context.Context, cs kubernetes.Interface, name string) ([]corev1.Pod, error) {
	list, err := cs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: labels.Set{"app": name}.String()})
	if err != nil {
		return nil, err
	}
	var out []corev1.Pod
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil {
			out = append(out, p)
		}
	}
	return out, nil
}

func TestReplicaSetLifecycle(t *testing.T) {
	cs := startCluster(t)
	ctx := context.Background()
	rs, err := cs.AppsV1().ReplicaSets("default").Create(ctx, newRS("web", 3), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cs.AppsV1().ReplicaSets("default").Delete(context.Background(), "web", metav1.DeleteOptions{})
	})

	var pods []corev1.Pod
	testcluster.Eventually(t, 30*time.Second, "3 running pods and a complete status", func(ctx context.Context) (bool, error) {
		pods, err = activePods(ctx, cs, "web")
		if err != nil || len(pods) != 3 {
			return false, err
		}
		got, err := cs.AppsV1().ReplicaSets("default").Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		st := got.Status
		return st.Replicas == 3 && st.ReadyReplicas == 3 && st.AvailableReplicas == 3 &&
			st.FullyLabeledReplicas == 3 && st.ObservedGeneration == got.Generation, nil
	})
	for _, p := range pods {
		if !strings.HasPrefix(p.Name, "web-") || len(p.Name) != len("web-")+5 {
			t.Errorf("pod name %q, want web-<5 chars>", p.Name)
		}
		ref := metav1.GetControllerOf(&p)
		if ref == nil || ref.UID != rs.UID || ref.Kind != "ReplicaSet" || !ptr.Deref(ref.BlockOwnerDeletion, false) {
			t.Errorf("pod %s owner = %+v", p.Name, p.OwnerReferences)
		}
	}

	// A deleted pod is replaced by one with a new name.
	victim := pods[0].Name
	if err := cs.CoreV1().Pods("default").Delete(ctx, victim, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	testcluster.Eventually(t, 30*time.Second, "replacement pod", func(ctx context.Context) (bool, error) {
		pods, err = activePods(ctx, cs, "web")
		if err != nil || len(pods) != 3 {
			return false, err
		}
		for _, p := range pods {
			if p.Name == victim {
				return false, nil
			}
		}
		return true, nil
	})

	// An orphan that matches is adopted, and the set shrinks back to 3.
	orphan := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "stray", Labels: map[string]string{"app": "web"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "nginx"}}},
	}
	if _, err := cs.CoreV1().Pods("default").Create(ctx, orphan, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	testcluster.Eventually(t, 30*time.Second, "orphan adopted and replicas back to 3", func(ctx context.Context) (bool, error) {
		pods, err = activePods(ctx, cs, "web")
		if err != nil || len(pods) != 3 {
			return false, err
		}
		for _, p := range pods {
			if ref := metav1.GetControllerOf(&p); ref == nil || ref.UID != rs.UID {
				return false, nil
			}
		}
		return true, nil
	})

	// A pod relabelled out of the selector is released and replaced.
	released := pods[0].Name
	patch := []byte(`{"metadata":{"labels":{"app":"elsewhere"}}}`)
	if _, err := cs.CoreV1().Pods("default").Patch(ctx, released, types.StrategicMergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cs.CoreV1().Pods("default").Delete(context.Background(), released, metav1.DeleteOptions{}) })
	testcluster.Eventually(t, 30*time.Second, "relabelled pod released and replaced", func(ctx context.Context) (bool, error) {
		p, err := cs.CoreV1().Pods("default").Get(ctx, released, metav1.GetOptions{})
		if err != nil || len(p.OwnerReferences) != 0 {
			return false, err
		}
		pods, err = activePods(ctx, cs, "web")
		return len(pods) == 3, err
	})

	// Scaling down removes pods and keeps the status exact.
	if _, err := cs.AppsV1().ReplicaSets("default").Patch(ctx, "web", types.MergePatchType, []byte(`{"spec":{"replicas":1}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	testcluster.Eventually(t, 30*time.Second, "scaled down to 1", func(ctx context.Context) (bool, error) {
		pods, err = activePods(ctx, cs, "web")
		if err != nil || len(pods) != 1 {
			return false, err
		}
		got, err := cs.AppsV1().ReplicaSets("default").Get(ctx, "web", metav1.GetOptions{})
		return err == nil && got.Status.Replicas == 1 && got.Status.ReadyReplicas == 1, err
	})
}

func TestPodsToDeleteRanking(t *testing.T) {
	now := time.Now()
	mk := func(name, node string, phase corev1.PodPhase, ready bool, age time.Duration) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: metav1.NewTime(now.Add(-age))}}
		p.Spec.NodeName = node
		p.Status.Phase = phase
		st := corev1.ConditionFalse
		if ready {
			st = corev1.ConditionTrue
		}
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: st, LastTransitionTime: metav1.NewTime(now.Add(-age))}}
		return p
	}
	pods := []*corev1.Pod{
		mk("old-ready", "a", corev1.PodRunning, true, time.Hour),
		mk("unscheduled", "", corev1.PodPending, false, time.Hour),
		mk("new-ready", "b", corev1.PodRunning, true, time.Second),
		mk("pending", "c", corev1.PodPending, false, time.Hour),
		mk("not-ready", "d", corev1.PodRunning, false, time.Hour),
	}
	var got []string
	for _, p := range podsToDelete(pods, 4) {
		got = append(got, p.Name)
	}
	want := "[unscheduled pending not-ready new-ready]"
	if fmt.Sprint(got) != want {
		t.Errorf("deletion order %v, want %s", got, want)
	}
}

func TestSlowStartBatch(t *testing.T) {
	var calls atomic.Int32
	done, err := slowStartBatch(10, 1, func() error {
		if calls.Add(1) > 3 {
			return fmt.Errorf("rejected")
		}
		return nil
	})
	// Batches 1 and 2 succeed, the batch of 4 fails: 7 calls, 3 successes.
	if err == nil || done != 3 || calls.Load() != 7 {
		t.Errorf("done=%d calls=%d err=%v, want 3, 7 and an error", done, calls.Load(), err)
	}
}
