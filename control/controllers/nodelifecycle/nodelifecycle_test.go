package nodelifecycle

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/kubectl/pkg/util/podutils"
	"k8s.io/utils/ptr"

	"github.com/wasmkube/wasmkube/control/controllers/framework"
	"github.com/wasmkube/wasmkube/internal/simnode"
	"github.com/wasmkube/wasmkube/internal/testcluster"
)

const grace = 2 * time.Second

func startCluster(t *testing.T) (kubernetes.Interface, *simnode.Cluster) {
	t.Helper()
	_, cs := testcluster.Start(t)
	nodes := testcluster.StartNodes(t, cs, simnode.Options{
		Bind: true, LeaseInterval: 300 * time.Millisecond,
		Nodes: []simnode.NodeSpec{{Name: "n1"}, {Name: "n2"}},
	})
	testcluster.RunControllers(t, cs, map[string]framework.Starter{
		"nodelifecycle": Starter(Options{GracePeriod: grace, StartupGracePeriod: grace}),
	})
	return cs, nodes
}

func eventually(t *testing.T, what string, cond func(ctx context.Context) (bool, error)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var last error
	err := wait.PollUntilContextCancel(ctx, 50*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		ok, err := cond(ctx)
		last = err
		return ok, nil
	})
	if err != nil {
		t.Fatalf("%s: not reached: %v (last: %v)", what, err, last)
	}
}

func podOn(name, node string, tolerations ...corev1.Toleration) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: corev1.PodSpec{
			NodeSelector: map[string]string{corev1.LabelHostname: node},
			Tolerations:  tolerations,
			Containers:   []corev1.Container{{Name: "c", Image: "nginx"}},
		},
	}
}

func unreachableFor(seconds *int64) corev1.Toleration {
	return corev1.Toleration{
		Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists,
		Effect: corev1.TaintEffectNoExecute, TolerationSeconds: seconds,
	}
}

func nodeState(ctx context.Context, cs kubernetes.Interface, name string) (*corev1.NodeCondition, []corev1.Taint, error) {
	n, err := cs.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, nil, err
	}
	return readyCondition(n), n.Spec.Taints, nil
}

func hasTaint(taints []corev1.Taint, key string, effect corev1.TaintEffect) bool {
	for _, t := range taints {
		if t.Key == key && t.Effect == effect {
			return true
		}
	}
	return false
}

// deletedAt polls pods until each has a deletionTimestamp (or is gone),
// recording when the test first saw it.
func watchDeletions(ctx context.Context, cs kubernetes.Interface, names ...string) func() map[string]time.Time {
	var mu sync.Mutex
	seen := map[string]time.Time{}
	go func() {
		for ctx.Err() == nil {
			for _, n := range names {
				p, err := cs.CoreV1().Pods("default").Get(ctx, n, metav1.GetOptions{})
				if ctx.Err() != nil {
					return
				}
				mu.Lock()
				if _, ok := seen[n]; !ok && (err != nil || p.DeletionTimestamp != nil) {
					seen[n] = time.Now()
				}
				mu.Unlock()
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	return func() map[string]time.Time {
		mu.Lock()
		defer mu.Unlock()
		out := map[string]time.Time{}
		for k, v := range seen {
			out[k] = v
		}
		return out
	}
}

func hasEvent(ctx context.Context, cs kubernetes.Interface, object, reason, message string) bool {
	evs, err := cs.CoreV1().Events("default").List(ctx, metav1.ListOptions{})
	if err != nil {
		return false
	}
	for _, e := range evs.Items {
		if e.InvolvedObject.Name == object && e.Reason == reason && strings.Contains(e.Message, message) {
			return true
		}
	}
	return false
}

func TestUnreachableNodeIsTaintedAndEvicted(t *testing.T) {
	cs, nodes := startCluster(t)
	ctx := context.Background()
	pods := []*corev1.Pod{
		podOn("short", "n1", unreachableFor(ptr.To[int64](2))),
		podOn("zero", "n1", unreachableFor(ptr.To[int64](0))),
		podOn("forever", "n1", unreachableFor(nil)),
		podOn("long", "n1"), // the API server's default: 300 s
		podOn("elsewhere", "n2"),
	}
	for _, p := range pods {
		if _, err := cs.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, p := range pods {
			_ = cs.CoreV1().Pods("default").Delete(context.Background(), p.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
		}
	})
	eventually(t, "pods running and ready", func(ctx context.Context) (bool, error) {
		for _, p := range pods {
			got, err := cs.CoreV1().Pods("default").Get(ctx, p.Name, metav1.GetOptions{})
			if err != nil || !podutils.IsPodReady(got) {
				return false, fmt.Errorf("pod %s not ready: %v", p.Name, err)
			}
		}
		return true, nil
	})

	// Healthy nodes stay untouched well past the grace period.
	time.Sleep(grace + time.Second)
	for _, n := range []string{"n1", "n2"} {
		rc, taints, err := nodeState(ctx, cs, n)
		if err != nil || rc == nil || rc.Status != corev1.ConditionTrue || len(taints) != 0 {
			t.Fatalf("healthy node %s: ready=%+v taints=%v err=%v", n, rc, taints, err)
		}
	}

	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	deletions := watchDeletions(watchCtx, cs, "short", "zero", "forever", "long", "elsewhere")
	nodes.StopNode("n1")
	stopped := time.Now()

	var tainted time.Time
	eventually(t, "n1 unknown and tainted unreachable", func(ctx context.Context) (bool, error) {
		rc, taints, err := nodeState(ctx, cs, "n1")
		if err != nil || rc == nil {
			return false, err
		}
		if rc.Status != corev1.ConditionUnknown || !hasTaint(taints, corev1.TaintNodeUnreachable, corev1.TaintEffectNoExecute) {
			return false, fmt.Errorf("ready=%s taints=%v", rc.Status, taints)
		}
		if rc.Reason != "NodeStatusUnknown" || rc.Message != "Kubelet stopped posting node status." {
			return false, fmt.Errorf("ready reason %q message %q", rc.Reason, rc.Message)
		}
		tainted = time.Now()
		return true, nil
	})
	if d := tainted.Sub(stopped); d < grace-500*time.Millisecond {
		t.Errorf("n1 marked unknown %v after its lease stopped, before the %v grace period", d, grace)
	}
	if rc, taints, err := nodeState(ctx, cs, "n1"); err != nil || !hasTaint(taints, corev1.TaintNodeUnreachable, corev1.TaintEffectNoSchedule) {
		t.Errorf("n1 lacks the unreachable NoSchedule taint: %v %v %v", rc, taints, err)
	}

	eventually(t, "zero and short evicted", func(ctx context.Context) (bool, error) {
		d := deletions()
		_, zero := d["zero"]
		_, short := d["short"]
		return zero && short, fmt.Errorf("deletions so far %v", d)
	})
	d := deletions()
	if at := d["zero"].Sub(tainted); at > 1500*time.Millisecond {
		t.Errorf("pod with tolerationSeconds 0 evicted %v after the taint, want at once", at)
	}
	if at := d["short"].Sub(tainted); at < time.Second || at > 6*time.Second {
		t.Errorf("pod with tolerationSeconds 2 evicted %v after the taint, want about 2s", at)
	}
	for _, n := range []string{"short", "zero"} {
		if !hasEvent(ctx, cs, n, "TaintManagerEviction", "Marking for deletion Pod default/"+n) {
			t.Errorf("no TaintManagerEviction event for %s", n)
		}
	}
	eventually(t, "pods on n1 marked not ready", func(ctx context.Context) (bool, error) {
		for _, n := range []string{"forever", "long"} {
			p, err := cs.CoreV1().Pods("default").Get(ctx, n, metav1.GetOptions{})
			if err != nil || podutils.IsPodReady(p) {
				return false, fmt.Errorf("%s still ready (%v)", n, err)
			}
		}
		return true, nil
	})
	eventually(t, "NodeNotReady event for n1", func(ctx context.Context) (bool, error) {
		return hasEvent(ctx, cs, "n1", "NodeNotReady", "Node n1 status is now: NodeNotReady"), nil
	})
	if rc, taints, err := nodeState(ctx, cs, "n2"); err != nil || rc.Status != corev1.ConditionTrue || len(taints) != 0 {
		t.Errorf("n2 affected: ready=%v taints=%v err=%v", rc, taints, err)
	}

	// n1 comes back: its lease is renewed and its kubelet posts Ready.
	renewCtx, stopRenew := context.WithCancel(ctx)
	defer stopRenew()
	go renew(renewCtx, cs, "n1")
	n1, err := cs.CoreV1().Nodes().Get(ctx, "n1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n1.Status.Conditions {
		c := &n1.Status.Conditions[i]
		c.Status, c.Reason, c.Message = corev1.ConditionTrue, "KubeletReady", "kubelet is posting ready status"
		if c.Type != corev1.NodeReady {
			c.Status = corev1.ConditionFalse
		}
		c.LastHeartbeatTime = metav1.Now()
	}
	if _, err := cs.CoreV1().Nodes().UpdateStatus(ctx, n1, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "n1 untainted", func(ctx context.Context) (bool, error) {
		rc, taints, err := nodeState(ctx, cs, "n1")
		return err == nil && rc.Status == corev1.ConditionTrue && len(taints) == 0, fmt.Errorf("ready=%v taints=%v err=%v", rc, taints, err)
	})
	eventually(t, "cancellation event for long", func(ctx context.Context) (bool, error) {
		return hasEvent(ctx, cs, "long", "TaintManagerEviction", "Cancelling deletion of Pod default/long"), nil
	})
	// Past another grace period the node, renewing again, stays healthy.
	time.Sleep(grace + 500*time.Millisecond)
	rc, taints, err := nodeState(ctx, cs, "n1")
	if err != nil || rc.Status != corev1.ConditionTrue || len(taints) != 0 {
		t.Errorf("renewing n1: ready=%v taints=%v err=%v", rc, taints, err)
	}
	d = deletions()
	for _, n := range []string{"forever", "long", "elsewhere"} {
		if _, gone := d[n]; gone {
			t.Errorf("pod %s was evicted", n)
		}
	}
}

// renew plays n1's kubelet heartbeat after the simulated node was stopped.
func renew(ctx context.Context, cs kubernetes.Interface, name string) {
	leases := cs.CoordinationV1().Leases(corev1.NamespaceNodeLease)
	for ctx.Err() == nil {
		if l, err := leases.Get(ctx, name, metav1.GetOptions{}); err == nil {
			l.Spec.RenewTime = ptr.To(metav1.NewMicroTime(time.Now()))
			_, _ = leases.Update(ctx, l, metav1.UpdateOptions{})
		}
		select {
		case <-ctx.Done():
		case <-time.After(300 * time.Millisecond):
		}
	}
}

func TestUntoleratedNoExecuteTaintEvictsAtOnce(t *testing.T) {
	cs, _ := startCluster(t)
	ctx := context.Background()
	tolerating := podOn("tolerating", "n2", corev1.Toleration{
		Key: "example.com/drain", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute,
	})
	for _, p := range []*corev1.Pod{podOn("plain", "n2"), tolerating} {
		if _, err := cs.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = cs.CoreV1().Pods("default").Delete(context.Background(), p.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
		})
	}
	eventually(t, "pods ready", func(ctx context.Context) (bool, error) {
		for _, n := range []string{"plain", "tolerating"} {
			p, err := cs.CoreV1().Pods("default").Get(ctx, n, metav1.GetOptions{})
			if err != nil || !podutils.IsPodReady(p) {
				return false, err
			}
		}
		return true, nil
	})
	n2, err := cs.CoreV1().Nodes().Get(ctx, "n2", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n2.Spec.Taints = append(n2.Spec.Taints, corev1.Taint{Key: "example.com/drain", Effect: corev1.TaintEffectNoExecute})
	if _, err := cs.CoreV1().Nodes().Update(ctx, n2, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	tainted := time.Now()
	eventually(t, "plain evicted", func(ctx context.Context) (bool, error) {
		p, err := cs.CoreV1().Pods("default").Get(ctx, "plain", metav1.GetOptions{})
		return err != nil || p.DeletionTimestamp != nil, nil
	})
	if d := time.Since(tainted); d > 1500*time.Millisecond {
		t.Errorf("untolerated pod evicted %v after the taint, want at once", d)
	}
	time.Sleep(time.Second)
	p, err := cs.CoreV1().Pods("default").Get(ctx, "tolerating", metav1.GetOptions{})
	if err != nil || p.DeletionTimestamp != nil {
		t.Errorf("pod tolerating the taint forever was evicted: %v", err)
	}
	// The user's taint is not the controller's to remove.
	rc, taints, err := nodeState(ctx, cs, "n2")
	if err != nil || !hasTaint(taints, "example.com/drain", corev1.TaintEffectNoExecute) || rc.Status != corev1.ConditionTrue {
		t.Errorf("n2: ready=%v taints=%v err=%v", rc, taints, err)
	}
}

func TestTaintsFollowConditions(t *testing.T) {
	now := time.Now()
	node := &corev1.Node{
		Spec: corev1.NodeSpec{Unschedulable: true, Taints: []corev1.Taint{
			{Key: "user", Effect: corev1.TaintEffectNoSchedule},
			{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoExecute},
		}},
		Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{
			{Type: corev1.NodeReady, Status: corev1.ConditionFalse},
			{Type: corev1.NodeDiskPressure, Status: corev1.ConditionTrue},
		}},
	}
	taints, changed := retaint(node, now)
	if !changed {
		t.Fatal("no change planned")
	}
	var got []string
	for _, tn := range taints {
		got = append(got, tn.Key+":"+string(tn.Effect))
	}
	want := "user:NoSchedule node.kubernetes.io/disk-pressure:NoSchedule node.kubernetes.io/not-ready:NoExecute node.kubernetes.io/not-ready:NoSchedule node.kubernetes.io/unschedulable:NoSchedule"
	if strings.Join(got, " ") != want {
		t.Errorf("taints = %v\nwant    %s", got, want)
	}
	node.Spec.Taints = taints
	if _, changed := retaint(node, now.Add(time.Minute)); changed {
		t.Error("a second pass changed the taints again")
	}
}
