package simnode

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/wasmkube/wasmkube/control/server"
)

func startCluster(t *testing.T, opts Options) (kubernetes.Interface, *Cluster) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := server.Start(ctx, server.Options{DataDir: t.TempDir(), SecurePort: 0})
	if err != nil {
		t.Fatalf("starting server: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	cs, err := kubernetes.NewForConfig(s.LoopbackConfig())
	if err != nil {
		t.Fatal(err)
	}
	c, err := Start(ctx, cs, opts)
	if err != nil {
		t.Fatalf("simnode: %v", err)
	}
	t.Cleanup(c.Stop)
	return cs, c
}

func pod(name string, annotations map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: annotations},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
	}
}

func waitPod(ctx context.Context, t *testing.T, cs kubernetes.Interface, name string, cond func(*corev1.Pod) bool) *corev1.Pod {
	t.Helper()
	var last *corev1.Pod
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 15*time.Second, true, func(ctx context.Context) (bool, error) {
		p, err := cs.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		last = p
		return cond(p), nil
	})
	if err != nil {
		t.Fatalf("pod %s: condition not met: %v; last status %+v", name, err, last)
	}
	return last
}

func TestNodesRegisterAndRunPods(t *testing.T) {
	cs, _ := startCluster(t, Options{Bind: true, LeaseInterval: 200 * time.Millisecond, Nodes: []NodeSpec{
		{Name: "edge-1", CPU: "2", Memory: "4Gi", Pods: 20, Labels: map[string]string{"zone": "a"}},
		{Name: "edge-2"},
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	n, err := cs.CoreV1().Nodes().Get(ctx, "edge-1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n.Labels[corev1.LabelHostname] != "edge-1" || n.Labels["zone"] != "a" {
		t.Errorf("labels = %v", n.Labels)
	}
	if got := n.Status.Allocatable.Cpu().String(); got != "2" {
		t.Errorf("allocatable cpu = %s, want 2", got)
	}
	if got := n.Status.Capacity.Pods().Value(); got != 20 {
		t.Errorf("pods capacity = %d, want 20", got)
	}
	ready := false
	for _, c := range n.Status.Conditions {
		ready = ready || (c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue)
	}
	if !ready {
		t.Errorf("node not Ready: %+v", n.Status.Conditions)
	}
	lease, err := cs.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(ctx, "edge-2", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("lease: %v", err)
	}
	first := lease.Spec.RenewTime.Time
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 5*time.Second, false, func(ctx context.Context) (bool, error) {
		l, err := cs.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(ctx, "edge-2", metav1.GetOptions{})
		return err == nil && l.Spec.RenewTime.After(first), nil
	})
	if err != nil {
		t.Errorf("lease not renewed: %v", err)
	}

	if _, err := cs.CoreV1().Pods("default").Create(ctx, pod("web", nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	p := waitPod(ctx, t, cs, "web", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	if p.Spec.NodeName == "" || p.Status.PodIP == "" || p.Status.HostIP == "" {
		t.Errorf("running pod: node=%q podIP=%q hostIP=%q", p.Spec.NodeName, p.Status.PodIP, p.Status.HostIP)
	}
	if len(p.Status.ContainerStatuses) != 1 || p.Status.ContainerStatuses[0].State.Running == nil || !p.Status.ContainerStatuses[0].Ready {
		t.Errorf("container statuses = %+v", p.Status.ContainerStatuses)
	}
	for _, want := range []corev1.PodConditionType{corev1.PodScheduled, corev1.PodInitialized, corev1.ContainersReady, corev1.PodReady} {
		found := false
		for _, c := range p.Status.Conditions {
			found = found || (c.Type == want && c.Status == corev1.ConditionTrue)
		}
		if !found {
			t.Errorf("condition %s not True: %+v", want, p.Status.Conditions)
		}
	}

	// A kubelet finishes deletions: no grace period wait in tests.
	if err := cs.CoreV1().Pods("default").Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	err = wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := cs.CoreV1().Pods("default").Get(ctx, "web", metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	if err != nil {
		t.Errorf("deleted pod still there: %v", err)
	}
}

func TestExitCodesAndReadyDelay(t *testing.T) {
	cs, _ := startCluster(t, Options{Bind: true, ReadyDelay: 500 * time.Millisecond, Nodes: []NodeSpec{{Name: "n1"}}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for name, ann := range map[string]map[string]string{
		"ok":   {AnnotationExitCode: "0", AnnotationRunFor: "1s"},
		"fail": {AnnotationExitCode: "3"},
		"slow": nil,
	} {
		if _, err := cs.CoreV1().Pods("default").Create(ctx, pod(name, ann), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	p := waitPod(ctx, t, cs, "slow", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	if p.Status.ContainerStatuses[0].Ready && time.Since(p.Status.StartTime.Time) < 400*time.Millisecond {
		t.Errorf("pod ready before ReadyDelay")
	}
	waitPod(ctx, t, cs, "slow", func(p *corev1.Pod) bool {
		return len(p.Status.ContainerStatuses) == 1 && p.Status.ContainerStatuses[0].Ready
	})
	p = waitPod(ctx, t, cs, "fail", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed })
	if term := p.Status.ContainerStatuses[0].State.Terminated; term == nil || term.ExitCode != 3 {
		t.Errorf("failed pod container state = %+v", p.Status.ContainerStatuses[0].State)
	}
	p = waitPod(ctx, t, cs, "ok", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodSucceeded })
	if term := p.Status.ContainerStatuses[0].State.Terminated; term == nil || term.ExitCode != 0 ||
		term.FinishedAt.Sub(term.StartedAt.Time) < time.Second {
		t.Errorf("succeeded pod container state = %+v", p.Status.ContainerStatuses[0].State)
	}
	for _, name := range []string{"ok", "fail", "slow"} {
		_ = cs.CoreV1().Pods("default").Delete(ctx, name, metav1.DeleteOptions{})
	}
}

func TestStopNode(t *testing.T) {
	cs, c := startCluster(t, Options{Bind: true, LeaseInterval: 100 * time.Millisecond, Nodes: []NodeSpec{{Name: "a"}, {Name: "b"}}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c.StopNode("a")
	l, err := cs.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(ctx, "a", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(400 * time.Millisecond)
	l2, err := cs.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(ctx, "a", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !l2.Spec.RenewTime.Equal(l.Spec.RenewTime) {
		t.Errorf("stopped node renewed its lease: %v -> %v", l.Spec.RenewTime, l2.Spec.RenewTime)
	}
	for _, name := range []string{"p1", "p2"} {
		if _, err := cs.CoreV1().Pods("default").Create(ctx, pod(name, nil), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		p := waitPod(ctx, t, cs, name, func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
		if p.Spec.NodeName != "b" {
			t.Errorf("pod %s bound to stopped node %s", name, p.Spec.NodeName)
		}
		_ = cs.CoreV1().Pods("default").Delete(ctx, name, metav1.DeleteOptions{})
	}
}
