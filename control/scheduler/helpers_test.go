package scheduler

import (
	"fmt"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// testNode is a Ready node with the given allocatable cpu, memory and pods.
func testNode(name, cpu, mem string, pods int, mods ...func(*v1.Node)) *v1.Node {
	rl := v1.ResourceList{
		v1.ResourceCPU:              resource.MustParse(cpu),
		v1.ResourceMemory:           resource.MustParse(mem),
		v1.ResourcePods:             *resource.NewQuantity(int64(pods), resource.DecimalSI),
		v1.ResourceEphemeralStorage: resource.MustParse("10Gi"),
	}
	n := &v1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{v1.LabelHostname: name}},
		Status: v1.NodeStatus{
			Capacity:    rl,
			Allocatable: rl.DeepCopy(),
			Conditions:  []v1.NodeCondition{{Type: v1.NodeReady, Status: v1.ConditionTrue}},
		},
	}
	for _, m := range mods {
		m(n)
	}
	return n
}

var uidSeq int

// testPod is a pending pod with one container requesting cpu and memory
// ("" for none).
func testPod(name, cpu, mem string, mods ...func(*v1.Pod)) *v1.Pod {
	uidSeq++
	req := v1.ResourceList{}
	if cpu != "" {
		req[v1.ResourceCPU] = resource.MustParse(cpu)
	}
	if mem != "" {
		req[v1.ResourceMemory] = resource.MustParse(mem)
	}
	p := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID(fmt.Sprintf("uid-%d", uidSeq))},
		Spec: v1.PodSpec{
			SchedulerName: v1.DefaultSchedulerName,
			Containers:    []v1.Container{{Name: "c", Image: "x", Resources: v1.ResourceRequirements{Requests: req}}},
		},
	}
	for _, m := range mods {
		m(p)
	}
	return p
}

// testNodeInfo is a node with the given pods already on it.
func testNodeInfo(node *v1.Node, pods ...*v1.Pod) *nodeInfo {
	n := newNodeInfo(node.Name)
	n.setNode(node)
	for _, p := range pods {
		n.addPod(newPodInfo(p))
	}
	return n
}

func testState(pod *v1.Pod) *podState { return newPodState(newPodInfo(pod), nil) }

// testCache holds nodes and bound pods (pod.Spec.NodeName set).
func testCache(nodes []*v1.Node, pods ...*v1.Pod) *cache {
	c := newCache()
	for _, n := range nodes {
		c.setNode(n)
	}
	for _, p := range pods {
		c.setPod(newPodInfo(p))
	}
	return c
}

func onNode(node string) func(*v1.Pod) { return func(p *v1.Pod) { p.Spec.NodeName = node } }

func withLabels(kv ...string) func(*v1.Pod) {
	return func(p *v1.Pod) {
		if p.Labels == nil {
			p.Labels = map[string]string{}
		}
		for i := 0; i+1 < len(kv); i += 2 {
			p.Labels[kv[i]] = kv[i+1]
		}
	}
}

func nodeLabels(kv ...string) func(*v1.Node) {
	return func(n *v1.Node) {
		for i := 0; i+1 < len(kv); i += 2 {
			n.Labels[kv[i]] = kv[i+1]
		}
	}
}

func taints(ts ...v1.Taint) func(*v1.Node) {
	return func(n *v1.Node) { n.Spec.Taints = append(n.Spec.Taints, ts...) }
}

func tolerate(ts ...v1.Toleration) func(*v1.Pod) {
	return func(p *v1.Pod) { p.Spec.Tolerations = append(p.Spec.Tolerations, ts...) }
}

func reasonsOf(s *status) []string {
	if s == nil {
		return nil
	}
	return s.reasons
}
