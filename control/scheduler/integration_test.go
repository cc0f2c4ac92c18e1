package scheduler

import (
	"context"
	"fmt"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/wasmkube/wasmkube/control/controllers/framework"
	"github.com/wasmkube/wasmkube/internal/testcluster"
)

// startServer runs a real control plane (embedded etcd, HTTPS API).
func startServer(t testing.TB) kubernetes.Interface {
	t.Helper()
	_, cs := testcluster.Start(t)
	return cs
}

// runScheduler runs the scheduler the way the controller manager does,
// through Starter and framework.Run.
func runScheduler(t testing.TB, cs kubernetes.Interface, opts Options) context.CancelFunc {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cc := framework.NewContext(cs, 0)
	done := make(chan error, 1)
	go func() { done <- framework.Run(ctx, cc, map[string]framework.Starter{"scheduler": Starter(opts)}) }()
	stop := func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("scheduler: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Errorf("scheduler did not stop")
		}
	}
	t.Cleanup(stop)
	return cancel
}

type nodeSpec struct {
	name          string
	cpu, mem      string
	pods          int
	labels        map[string]string
	taints        []v1.Taint
	unschedulable bool
}

func createNode(t testing.TB, ctx context.Context, cs kubernetes.Interface, ns nodeSpec) {
	t.Helper()
	labels := map[string]string{v1.LabelHostname: ns.name}
	for k, v := range ns.labels {
		labels[k] = v
	}
	n := &v1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: ns.name, Labels: labels},
		Spec:       v1.NodeSpec{Taints: ns.taints, Unschedulable: ns.unschedulable},
	}
	n, err := cs.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create node %s: %v", ns.name, err)
	}
	rl := v1.ResourceList{
		v1.ResourceCPU:    resource.MustParse(ns.cpu),
		v1.ResourceMemory: resource.MustParse(ns.mem),
		v1.ResourcePods:   *resource.NewQuantity(int64(ns.pods), resource.DecimalSI),
	}
	n.Status = v1.NodeStatus{
		Capacity:    rl,
		Allocatable: rl.DeepCopy(),
		Conditions:  []v1.NodeCondition{{Type: v1.NodeReady, Status: v1.ConditionTrue, Reason: "KubeletReady", LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now()}},
	}
	if _, err := cs.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("node %s status: %v", ns.name, err)
	}
}

func createPod(t testing.TB, ctx context.Context, cs kubernetes.Interface, name, cpu string, mods ...func(*v1.Pod)) {
	t.Helper()
	p := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: v1.PodSpec{Containers: []v1.Container{{Name: "app", Image: "busybox:1.36",
			Resources: v1.ResourceRequirements{Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse(cpu)}}}}},
	}
	for _, m := range mods {
		m(p)
	}
	if _, err := cs.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create pod %s: %v", name, err)
	}
}

// waitFor polls cond until it returns true or the deadline passes.
func waitFor(t testing.TB, what string, timeout time.Duration, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var lastErr error
	for time.Now().Before(deadline) {
		ok, err := cond()
		if ok {
			return
		}
		lastErr = err
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s (last error: %v)", what, lastErr)
}

func waitBound(t testing.TB, ctx context.Context, cs kubernetes.Interface, name string, timeout time.Duration) string {
	t.Helper()
	var node string
	waitFor(t, "pod "+name+" to be bound", timeout, func() (bool, error) {
		p, err := cs.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		node = p.Spec.NodeName
		return node != "", nil
	})
	return node
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func TestIntegrationPlacement(t *testing.T) {
	cs := startServer(t)
	ctx := testCtx(t)
	if err := EnsureWasmRuntimeClass(ctx, cs); err != nil {
		t.Fatal(err)
	}
	if err := EnsureWasmRuntimeClass(ctx, cs); err != nil {
		t.Fatalf("second call must accept the existing class: %v", err)
	}
	rc, err := cs.NodeV1().RuntimeClasses().Get(ctx, "wasm", metav1.GetOptions{})
	if err != nil || rc.Handler != "wasm" || rc.Scheduling == nil || rc.Scheduling.NodeSelector[WasmNodeLabel] != "true" {
		t.Fatalf("RuntimeClass wasm = %+v, %v", rc, err)
	}
	createNode(t, ctx, cs, nodeSpec{name: "small", cpu: "1", mem: "2Gi", pods: 110, labels: map[string]string{"disk": "ssd"}})
	createNode(t, ctx, cs, nodeSpec{name: "big", cpu: "4", mem: "8Gi", pods: 110})
	createNode(t, ctx, cs, nodeSpec{name: "cordoned", cpu: "16", mem: "32Gi", pods: 110, unschedulable: true})
	createNode(t, ctx, cs, nodeSpec{name: "edge-wasm", cpu: "2", mem: "2Gi", pods: 110, labels: map[string]string{WasmNodeLabel: "true"}})
	runScheduler(t, cs, Options{})

	createPod(t, ctx, cs, "needs-3cpu", "3")
	createPod(t, ctx, cs, "on-ssd", "100m", func(p *v1.Pod) { p.Spec.NodeSelector = map[string]string{"disk": "ssd"} })
	createPod(t, ctx, cs, "wasm-by-class", "100m", func(p *v1.Pod) { p.Spec.RuntimeClassName = ptr.To("wasm") })
	createPod(t, ctx, cs, "wasm-by-annotation", "100m", func(p *v1.Pod) { p.Annotations = map[string]string{WasmRuntimeAnnotation: "wasm"} })
	want := map[string]string{"needs-3cpu": "big", "on-ssd": "small", "wasm-by-class": "edge-wasm", "wasm-by-annotation": "edge-wasm"}
	for pod, node := range want {
		if got := waitBound(t, ctx, cs, pod, 20*time.Second); got != node {
			t.Errorf("pod %s bound to %s, want %s", pod, got, node)
		}
	}
	// Many small pods: none may land on the cordoned node although it has
	// by far the most room.
	for i := range 20 {
		createPod(t, ctx, cs, fmt.Sprintf("small-%d", i), "10m")
	}
	for i := range 20 {
		if got := waitBound(t, ctx, cs, fmt.Sprintf("small-%d", i), 20*time.Second); got == "cordoned" {
			t.Errorf("pod small-%d went to the cordoned node", i)
		}
	}
	var events *v1.EventList
	waitFor(t, "Scheduled event", 10*time.Second, func() (bool, error) {
		events, err = cs.CoreV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: fields.Set{"involvedObject.name": "needs-3cpu", "reason": "Scheduled"}.String()})
		return err == nil && len(events.Items) > 0, err
	})
	e := events.Items[0]
	if e.Type != v1.EventTypeNormal || e.Message != "Successfully assigned default/needs-3cpu to big" || e.Source.Component != "default-scheduler" {
		t.Errorf("Scheduled event: type %s, message %q, source %q", e.Type, e.Message, e.Source.Component)
	}
}

func TestIntegrationUnschedulableThenNodeAdded(t *testing.T) {
	cs := startServer(t)
	ctx := testCtx(t)
	cp := []v1.Taint{{Key: "node-role.kubernetes.io/control-plane", Effect: v1.TaintEffectNoSchedule}}
	createNode(t, ctx, cs, nodeSpec{name: "worker", cpu: "1", mem: "2Gi", pods: 110})
	createNode(t, ctx, cs, nodeSpec{name: "cp1", cpu: "8", mem: "8Gi", pods: 110, taints: cp})
	createNode(t, ctx, cs, nodeSpec{name: "cp2", cpu: "8", mem: "8Gi", pods: 110, taints: cp})
	// A flush interval far beyond the test: only the node event may retry.
	runScheduler(t, cs, Options{FlushInterval: time.Hour})

	createPod(t, ctx, cs, "big", "2")
	want := "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
	var ev v1.Event
	waitFor(t, "FailedScheduling event", 20*time.Second, func() (bool, error) {
		events, err := cs.CoreV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: fields.Set{"involvedObject.name": "big", "reason": "FailedScheduling"}.String()})
		if err != nil || len(events.Items) == 0 {
			return false, err
		}
		ev = events.Items[0]
		return true, nil
	})
	if ev.Type != v1.EventTypeWarning || ev.Message != want || ev.Source.Component != "default-scheduler" {
		t.Errorf("event: type %s source %q message\n%q\nwant\n%q", ev.Type, ev.Source.Component, ev.Message, want)
	}
	waitFor(t, "PodScheduled=False condition", 20*time.Second, func() (bool, error) {
		p, err := cs.CoreV1().Pods("default").Get(ctx, "big", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, c := range p.Status.Conditions {
			if c.Type == v1.PodScheduled {
				if c.Status != v1.ConditionFalse || c.Reason != v1.PodReasonUnschedulable || c.Message != want {
					return false, fmt.Errorf("condition %+v", c)
				}
				return true, nil
			}
		}
		return false, fmt.Errorf("no PodScheduled condition in %+v", p.Status.Conditions)
	})
	p, err := cs.CoreV1().Pods("default").Get(ctx, "big", metav1.GetOptions{})
	if err != nil || p.Spec.NodeName != "" {
		t.Fatalf("pod bound although it fits nowhere: %q, %v", p.Spec.NodeName, err)
	}

	createNode(t, ctx, cs, nodeSpec{name: "roomy", cpu: "4", mem: "8Gi", pods: 110})
	if node := waitBound(t, ctx, cs, "big", 10*time.Second); node != "roomy" {
		t.Errorf("bound to %s, want roomy", node)
	}
}

func TestIntegrationCordonAndPodDeletion(t *testing.T) {
	cs := startServer(t)
	ctx := testCtx(t)
	createNode(t, ctx, cs, nodeSpec{name: "a", cpu: "1", mem: "2Gi", pods: 110})
	createNode(t, ctx, cs, nodeSpec{name: "b", cpu: "1", mem: "2Gi", pods: 110})
	runScheduler(t, cs, Options{FlushInterval: time.Hour})

	// kubectl cordon b
	_, err := cs.CoreV1().Nodes().Patch(ctx, "b", "application/strategic-merge-patch+json", []byte(`{"spec":{"unschedulable":true}}`), metav1.PatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // let the informer deliver the cordon
	createPod(t, ctx, cs, "first", "600m")
	if node := waitBound(t, ctx, cs, "first", 10*time.Second); node != "a" {
		t.Fatalf("first bound to %s, want a", node)
	}
	// a is full now, b cordoned: the second waits until first goes away.
	createPod(t, ctx, cs, "second", "600m")
	waitFor(t, "second to be reported unschedulable", 10*time.Second, func() (bool, error) {
		events, err := cs.CoreV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: fields.Set{"involvedObject.name": "second", "reason": "FailedScheduling"}.String()})
		return err == nil && len(events.Items) > 0, err
	})
	if err := cs.CoreV1().Pods("default").Delete(ctx, "first", metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil {
		t.Fatal(err)
	}
	if node := waitBound(t, ctx, cs, "second", 10*time.Second); node != "a" {
		t.Errorf("second bound to %s, want a", node)
	}
}
