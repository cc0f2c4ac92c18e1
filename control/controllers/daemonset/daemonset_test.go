package daemonset

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/kubectl/pkg/util/podutils"

	"github.com/wasmkube/wasmkube/control/controllers/framework"
	"github.com/wasmkube/wasmkube/internal/simnode"
	"github.com/wasmkube/wasmkube/internal/testcluster"
)

// startCluster runs a real API server, simulated nodes and the DaemonSet
// controller. simnode's own binding is round robin and ignores node
// affinity, so the test binds daemon pods to the node their affinity names,
// which is what the scheduler does with them.
func startCluster(t *testing.T, nodes []simnode.NodeSpec) kubernetes.Interface {
	t.Helper()
	_, cs := testcluster.Start(t)
	testcluster.StartNodes(t, cs, simnode.Options{Nodes: nodes})
	testcluster.RunControllers(t, cs, map[string]framework.Starter{"daemonset": Starter()})
	binderCtx, stop := context.WithCancel(context.Background())
	binderDone := make(chan struct{})
	go func() {
		defer close(binderDone)
		_ = wait.PollUntilContextCancel(binderCtx, 50*time.Millisecond, true, func(ctx context.Context) (bool, error) {
			bindByAffinity(ctx, cs)
			return false, nil
		})
	}()
	t.Cleanup(func() {
		stop()
		<-binderDone
	})
	return cs
}

// bindByAffinity binds every unbound pod to the node its required
// matchFields affinity names, through pods/binding as a scheduler would.
func bindByAffinity(ctx context.Context, cs kubernetes.Interface) {
	pods, err := cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName="})
	if err != nil {
		return
	}
	for i := range pods.Items {
		p := &pods.Items[i]
		node := targetNode(p)
		if node == "" || p.DeletionTimestamp != nil {
			continue
		}
		_ = cs.CoreV1().Pods(p.Namespace).Bind(ctx, &corev1.Binding{
			ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace, UID: p.UID},
			Target:     corev1.ObjectReference{Kind: "Node", Name: node},
		}, metav1.CreateOptions{})
	}
}

func newDS(name, image string) *appsv1.DaemonSet {
	return &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: image}}},
			},
		},
	}
}

// livePods returns the DaemonSet's pods not being deleted, by node.
func livePods(ctx context.Context, cs kubernetes.Interface, name string) (map[string][]corev1.Pod, error) {
	list, err := cs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=" + name})
	if err != nil {
		return nil, err
	}
	out := map[string][]corev1.Pod{}
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil {
			out[p.Spec.NodeName] = append(out[p.Spec.NodeName], p)
		}
	}
	return out, nil
}

func TestPlacementSkipsUntoleratedTaint(t *testing.T) {
	cs := startCluster(t, []simnode.NodeSpec{
		{Name: "n1"}, {Name: "n2"},
		{Name: "n3", Taints: []corev1.Taint{{Key: "dedicated", Value: "infra", Effect: corev1.TaintEffectNoSchedule}}},
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ds, err := cs.AppsV1().DaemonSets("default").Create(ctx, newDS("agent", "agent:1"), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cs.AppsV1().DaemonSets("default").Delete(context.Background(), "agent", metav1.DeleteOptions{})
	})
	var last appsv1.DaemonSetStatus
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		got, err := cs.AppsV1().DaemonSets("default").Get(ctx, "agent", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		last = got.Status
		st := got.Status
		return st.ObservedGeneration == got.Generation && st.DesiredNumberScheduled == 2 && st.CurrentNumberScheduled == 2 &&
			st.NumberReady == 2 && st.NumberAvailable == 2 && st.UpdatedNumberScheduled == 2 && st.NumberMisscheduled == 0, nil
	})
	if err != nil {
		t.Fatalf("status never settled: %+v: %v", last, err)
	}
	byNode, err := livePods(ctx, cs, "agent")
	if err != nil {
		t.Fatal(err)
	}
	var nodes []string
	for n, ps := range byNode {
		nodes = append(nodes, n)
		if len(ps) != 1 {
			t.Errorf("node %q has %d daemon pods, want 1", n, len(ps))
		}
	}
	sort.Strings(nodes)
	if strings.Join(nodes, ",") != "n1,n2" {
		t.Fatalf("daemon pods on nodes %v, want exactly n1 and n2", nodes)
	}
	for _, ps := range byNode {
		p := ps[0]
		ref := metav1.GetControllerOf(&p)
		if ref == nil || ref.UID != ds.UID || ref.BlockOwnerDeletion == nil || !*ref.BlockOwnerDeletion {
			t.Errorf("pod %s owner = %+v, want controller ref to the DaemonSet with blockOwnerDeletion", p.Name, ref)
		}
		if targetNode(&corev1.Pod{Spec: corev1.PodSpec{Affinity: p.Spec.Affinity}}) != p.Spec.NodeName {
			t.Errorf("pod %s affinity %+v does not name its node %s", p.Name, p.Spec.Affinity, p.Spec.NodeName)
		}
		if !hasToleration(p.Spec.Tolerations, corev1.TaintNodeUnreachable, corev1.TaintEffectNoExecute) ||
			!hasToleration(p.Spec.Tolerations, corev1.TaintNodeUnschedulable, corev1.TaintEffectNoSchedule) {
			t.Errorf("pod %s lacks the daemon tolerations: %+v", p.Name, p.Spec.Tolerations)
		}
		hash := p.Labels[appsv1.DefaultDaemonSetUniqueLabelKey]
		if _, err := cs.AppsV1().ControllerRevisions("default").Get(ctx, "agent-"+hash, metav1.GetOptions{}); err != nil {
			t.Errorf("pod %s revision agent-%s: %v", p.Name, hash, err)
		}
	}
	testcluster.WaitEvent(ctx, t, cs, "agent", "SuccessfulCreate", "Created pod: agent-")
}

func TestRollingUpdateReplacesOnePodAtATime(t *testing.T) {
	cs := startCluster(t, []simnode.NodeSpec{{Name: "n1"}, {Name: "n2"}, {Name: "n3"}})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := cs.AppsV1().DaemonSets("default").Create(ctx, newDS("agent", "agent:1"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cs.AppsV1().DaemonSets("default").Delete(context.Background(), "agent", metav1.DeleteOptions{})
	})
	waitRolledOut(ctx, t, cs, "agent", "agent:1", 3)

	ds, err := cs.AppsV1().DaemonSets("default").Get(ctx, "agent", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ds.Spec.Template.Spec.Containers[0].Image = "agent:2"
	if _, err := cs.AppsV1().DaemonSets("default").Update(ctx, ds, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	// maxUnavailable defaults to 1: at least two of the three nodes keep
	// a ready daemon pod throughout the rollout.
	minReady := 3
	err = wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 40*time.Second, true, func(ctx context.Context) (bool, error) {
		byNode, err := livePods(ctx, cs, "agent")
		if err != nil {
			return false, err
		}
		ready, updated := 0, 0
		for _, ps := range byNode {
			for _, p := range ps {
				if podutils.IsPodReady(&p) {
					ready++
					if p.Spec.Containers[0].Image == "agent:2" {
						updated++
					}
				}
			}
		}
		minReady = min(minReady, ready)
		return updated == 3 && ready == 3, nil
	})
	if err != nil {
		t.Fatalf("rollout did not finish: %v", err)
	}
	if minReady < 2 {
		t.Errorf("ready daemon pods dropped to %d during the rollout, want at least 2 (maxUnavailable 1)", minReady)
	}
	waitRolledOut(ctx, t, cs, "agent", "agent:2", 3)
	revs, err := cs.AppsV1().ControllerRevisions("default").List(ctx, metav1.ListOptions{LabelSelector: "app=agent"})
	if err != nil {
		t.Fatal(err)
	}
	nums := map[int64]bool{}
	for _, r := range revs.Items {
		nums[r.Revision] = true
	}
	if len(revs.Items) != 2 || !nums[1] || !nums[2] {
		t.Errorf("revisions = %d with numbers %v, want 2 numbered 1 and 2", len(revs.Items), nums)
	}
}

func waitRolledOut(ctx context.Context, t *testing.T, cs kubernetes.Interface, name, image string, n int32) {
	t.Helper()
	var last appsv1.DaemonSetStatus
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		got, err := cs.AppsV1().DaemonSets("default").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		last = got.Status
		if got.Spec.Template.Spec.Containers[0].Image != image {
			return false, fmt.Errorf("template image is %s, want %s", got.Spec.Template.Spec.Containers[0].Image, image)
		}
		st := got.Status
		return st.ObservedGeneration == got.Generation && st.DesiredNumberScheduled == n &&
			st.UpdatedNumberScheduled == n && st.NumberAvailable == n, nil
	})
	if err != nil {
		t.Fatalf("daemonset %s not rolled out to %s: %+v: %v", name, image, last, err)
	}
}

func hasToleration(ts []corev1.Toleration, key string, effect corev1.TaintEffect) bool {
	for _, t := range ts {
		if t.Key == key && t.Effect == effect && t.Operator == corev1.TolerationOpExists {
			return true
		}
	}
	return false
}
