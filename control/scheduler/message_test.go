package scheduler

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
)

func TestFitErrorMessage(t *testing.T) {
	cp := v1.Taint{Key: "node-role.kubernetes.io/control-plane", Effect: v1.TaintEffectNoSchedule}
	c := testCache([]*v1.Node{
		testNode("worker", "2", "4Gi", 110),
		testNode("cp1", "8", "8Gi", 110, taints(cp)),
		testNode("cp2", "8", "8Gi", 110, taints(cp)),
	})
	a := newAlgorithm(c, nil, 1)
	_, err := a.schedule(newPodInfo(testPod("big", "4", "")))
	want := "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
	if err == nil || err.Error() != want {
		t.Errorf("got  %v\nwant %s", err, want)
	}

	// cpu that exists but is taken: preemption could help in principle.
	c.setPod(newPodInfo(testPod("x", "1500m", "", onNode("worker"))))
	_, err = a.schedule(newPodInfo(testPod("mid", "1", "3Gi")))
	want = "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }. preemption: 0/3 nodes are available: 1 No preemption victims found for incoming pod, 2 Preemption is not helpful for scheduling."
	if err == nil || err.Error() != want {
		t.Errorf("got  %v\nwant %s", err, want)
	}

	never := testPod("never", "1", "", func(p *v1.Pod) { p.Spec.PreemptionPolicy = ptr.To(v1.PreemptNever) })
	_, err = a.schedule(newPodInfo(never))
	want = "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }. preemption: not eligible due to preemptionPolicy=Never."
	if err == nil || err.Error() != want {
		t.Errorf("got  %v\nwant %s", err, want)
	}

	_, err = newAlgorithm(newCache(), nil, 1).schedule(newPodInfo(testPod("p", "", "")))
	if err == nil || err.Error() != "no nodes available to schedule pods" {
		t.Errorf("no nodes: %v", err)
	}
}

func TestHistogramSortsAsStrings(t *testing.T) {
	// Upstream sorts "<count> <reason>" strings, so "10 ..." precedes "2 ...".
	got := histogram(map[string]int{"node(s) were unschedulable": 2, "Insufficient memory": 10, "Too many pods": 2})
	want := "10 Insufficient memory, 2 Too many pods, 2 node(s) were unschedulable"
	if got != want {
		t.Errorf("histogram = %q, want %q", got, want)
	}
}
