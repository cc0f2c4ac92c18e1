package scheduler

import (
	"reflect"
	"testing"

	v1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	nodev1listers "k8s.io/client-go/listers/node/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
)

func expect(t *testing.T, name string, got *status, wantReasons []string, wantUnresolvable bool) {
	t.Helper()
	if !reflect.DeepEqual(reasonsOf(got), wantReasons) {
		t.Errorf("%s: reasons = %q, want %q", name, reasonsOf(got), wantReasons)
		return
	}
	if got != nil && got.unresolvable != wantUnresolvable {
		t.Errorf("%s: unresolvable = %v, want %v", name, got.unresolvable, wantUnresolvable)
	}
}

func TestFilterUnschedulable(t *testing.T) {
	cordoned := testNode("n1", "1", "1Gi", 10, func(n *v1.Node) { n.Spec.Unschedulable = true })
	expect(t, "cordoned", filterUnschedulable(testState(testPod("p", "", "")), testNodeInfo(cordoned)), []string{"node(s) were unschedulable"}, true)
	tol := tolerate(v1.Toleration{Key: v1.TaintNodeUnschedulable, Operator: v1.TolerationOpExists, Effect: v1.TaintEffectNoSchedule})
	expect(t, "tolerated", filterUnschedulable(testState(testPod("p", "", "", tol)), testNodeInfo(cordoned)), nil, false)
	expect(t, "schedulable", filterUnschedulable(testState(testPod("p", "", "")), testNodeInfo(testNode("n2", "1", "1Gi", 10))), nil, false)
}

func TestFilterReady(t *testing.T) {
	cond := func(s v1.ConditionStatus) func(*v1.Node) {
		return func(n *v1.Node) { n.Status.Conditions = []v1.NodeCondition{{Type: v1.NodeReady, Status: s}} }
	}
	pod := testState(testPod("p", "", ""))
	expect(t, "ready", filterReady(pod, testNodeInfo(testNode("n", "1", "1Gi", 10))), nil, false)
	expect(t, "not ready", filterReady(pod, testNodeInfo(testNode("n", "1", "1Gi", 10, cond(v1.ConditionFalse)))),
		[]string{"node(s) had untolerated taint {node.kubernetes.io/not-ready: }"}, true)
	expect(t, "unknown", filterReady(pod, testNodeInfo(testNode("n", "1", "1Gi", 10, cond(v1.ConditionUnknown)))),
		[]string{"node(s) had untolerated taint {node.kubernetes.io/unreachable: }"}, true)
	noCond := testNode("n", "1", "1Gi", 10, func(n *v1.Node) { n.Status.Conditions = nil })
	expect(t, "no condition", filterReady(pod, testNodeInfo(noCond)),
		[]string{"node(s) had untolerated taint {node.kubernetes.io/not-ready: }"}, true)
	tol := testState(testPod("p", "", "", tolerate(v1.Toleration{Key: v1.TaintNodeNotReady, Operator: v1.TolerationOpExists})))
	expect(t, "tolerated", filterReady(tol, testNodeInfo(testNode("n", "1", "1Gi", 10, cond(v1.ConditionFalse)))), nil, false)
}

func TestFilterTaints(t *testing.T) {
	cp := v1.Taint{Key: "node-role.kubernetes.io/control-plane", Effect: v1.TaintEffectNoSchedule}
	gpu := v1.Taint{Key: "dedicated", Value: "gpu", Effect: v1.TaintEffectNoExecute}
	soft := v1.Taint{Key: "soft", Effect: v1.TaintEffectPreferNoSchedule}
	pod := testState(testPod("p", "", ""))
	expect(t, "control-plane", filterTaints(pod, testNodeInfo(testNode("n", "1", "1Gi", 10, taints(cp)))),
		[]string{"node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }"}, true)
	expect(t, "noexecute", filterTaints(pod, testNodeInfo(testNode("n", "1", "1Gi", 10, taints(gpu)))),
		[]string{"node(s) had untolerated taint {dedicated: gpu}"}, true)
	expect(t, "prefer only scores", filterTaints(pod, testNodeInfo(testNode("n", "1", "1Gi", 10, taints(soft)))), nil, false)
	tol := testState(testPod("p", "", "", tolerate(v1.Toleration{Key: "dedicated", Operator: v1.TolerationOpEqual, Value: "gpu"})))
	expect(t, "tolerated", filterTaints(tol, testNodeInfo(testNode("n", "1", "1Gi", 10, taints(gpu)))), nil, false)
	wrong := testState(testPod("p", "", "", tolerate(v1.Toleration{Key: "dedicated", Operator: v1.TolerationOpEqual, Value: "cpu"})))
	expect(t, "wrong value", filterTaints(wrong, testNodeInfo(testNode("n", "1", "1Gi", 10, taints(gpu)))),
		[]string{"node(s) had untolerated taint {dedicated: gpu}"}, true)
}

func TestFilterNodeAffinity(t *testing.T) {
	plain := testNodeInfo(testNode("plain", "1", "1Gi", 10))
	ssd := testNodeInfo(testNode("ssd", "1", "1Gi", 10, nodeLabels("disk", "ssd")))
	wasm := testNodeInfo(testNode("wasm", "1", "1Gi", 10, nodeLabels(WasmNodeLabel, "true")))
	miss := []string{"node(s) didn't match Pod's node affinity/selector"}

	sel := testState(testPod("p", "", "", func(p *v1.Pod) { p.Spec.NodeSelector = map[string]string{"disk": "ssd"} }))
	expect(t, "selector miss", filterNodeAffinity(sel, plain), miss, true)
	expect(t, "selector hit", filterNodeAffinity(sel, ssd), nil, false)

	aff := testState(testPod("p", "", "", func(p *v1.Pod) {
		p.Spec.Affinity = &v1.Affinity{NodeAffinity: &v1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &v1.NodeSelector{
			NodeSelectorTerms: []v1.NodeSelectorTerm{{MatchExpressions: []v1.NodeSelectorRequirement{{Key: "disk", Operator: v1.NodeSelectorOpIn, Values: []string{"ssd", "nvme"}}}}},
		}}}
	}))
	expect(t, "affinity miss", filterNodeAffinity(aff, plain), miss, true)
	expect(t, "affinity hit", filterNodeAffinity(aff, ssd), nil, false)

	byClass := testState(testPod("p", "", "", func(p *v1.Pod) { p.Spec.RuntimeClassName = ptr.To("wasm") }))
	byAnnotation := testState(testPod("p", "", "", func(p *v1.Pod) { p.Annotations = map[string]string{WasmRuntimeAnnotation: "wasm"} }))
	for name, st := range map[string]*podState{"runtimeClassName": byClass, "annotation": byAnnotation} {
		expect(t, name+" on plain", filterNodeAffinity(st, plain), miss, true)
		expect(t, name+" on wasm", filterNodeAffinity(st, wasm), nil, false)
	}
	oci := testState(testPod("p", "", ""))
	expect(t, "oci pod on wasm node", filterNodeAffinity(oci, wasm), nil, false)
}

func TestRuntimeClassScheduling(t *testing.T) {
	idx := toolscache.NewIndexer(toolscache.MetaNamespaceKeyFunc, toolscache.Indexers{})
	_ = idx.Add(&nodev1.RuntimeClass{
		ObjectMeta: metav1.ObjectMeta{Name: "gvisor"},
		Handler:    "runsc",
		Scheduling: &nodev1.Scheduling{
			NodeSelector: map[string]string{"sandbox": "gvisor"},
			Tolerations:  []v1.Toleration{{Key: "sandboxed", Operator: v1.TolerationOpExists, Effect: v1.TaintEffectNoSchedule}},
		},
	})
	lister := nodev1listers.NewRuntimeClassLister(idx)
	pod := testPod("p", "", "", func(p *v1.Pod) { p.Spec.RuntimeClassName = ptr.To("gvisor") })
	st := newPodState(newPodInfo(pod), lister)
	sandbox := testNodeInfo(testNode("s", "1", "1Gi", 10, nodeLabels("sandbox", "gvisor"),
		taints(v1.Taint{Key: "sandboxed", Effect: v1.TaintEffectNoSchedule})))
	expect(t, "selector and toleration from the class", runFilters(st, sandbox), nil, false)
	expect(t, "other node", runFilters(st, testNodeInfo(testNode("o", "1", "1Gi", 10))),
		[]string{"node(s) didn't match Pod's node affinity/selector"}, true)

	missing := newPodState(newPodInfo(testPod("p", "", "", func(p *v1.Pod) { p.Spec.RuntimeClassName = ptr.To("kata") })), lister)
	if missing.preFilterMsg != `pod rejected: RuntimeClass "kata" not found` {
		t.Errorf("missing class: preFilterMsg = %q", missing.preFilterMsg)
	}
}

func TestFilterPorts(t *testing.T) {
	port := func(p int32, ip string) func(*v1.Pod) {
		return func(pod *v1.Pod) {
			pod.Spec.Containers[0].Ports = append(pod.Spec.Containers[0].Ports, v1.ContainerPort{ContainerPort: 80, HostPort: p, HostIP: ip})
		}
	}
	node := testNode("n", "4", "4Gi", 10)
	taken := testNodeInfo(node, testPod("web", "", "", port(8080, ""), onNode("n")))
	conflict := []string{"node(s) didn't have free ports for the requested pod ports"}
	expect(t, "same port", filterPorts(testState(testPod("p", "", "", port(8080, ""))), taken), conflict, false)
	expect(t, "specific ip against wildcard", filterPorts(testState(testPod("p", "", "", port(8080, "10.0.0.1"))), taken), conflict, false)
	expect(t, "other port", filterPorts(testState(testPod("p", "", "", port(8081, ""))), taken), nil, false)
	udp := testState(testPod("p", "", "", func(p *v1.Pod) {
		p.Spec.Containers[0].Ports = []v1.ContainerPort{{ContainerPort: 80, HostPort: 8080, Protocol: v1.ProtocolUDP}}
	}))
	expect(t, "other protocol", filterPorts(udp, taken), nil, false)
	twoIPs := testNodeInfo(node, testPod("a", "", "", port(9000, "10.0.0.1"), onNode("n")))
	expect(t, "different ips", filterPorts(testState(testPod("p", "", "", port(9000, "10.0.0.2"))), twoIPs), nil, false)
	expect(t, "same ip", filterPorts(testState(testPod("p", "", "", port(9000, "10.0.0.1"))), twoIPs), conflict, false)
}

func TestFilterResources(t *testing.T) {
	node := testNode("n", "2", "2Gi", 3)
	busy := testNodeInfo(node, testPod("a", "1500m", "1Gi", onNode("n")))
	expect(t, "fits", filterResources(testState(testPod("p", "500m", "1Gi")), busy), nil, false)
	expect(t, "cpu", filterResources(testState(testPod("p", "600m", "")), busy), []string{"Insufficient cpu"}, false)
	expect(t, "cpu beyond the node", filterResources(testState(testPod("p", "3", "")), busy), []string{"Insufficient cpu"}, true)
	expect(t, "cpu and memory", filterResources(testState(testPod("p", "1", "1500Mi")), busy), []string{"Insufficient cpu", "Insufficient memory"}, false)
	full := testNodeInfo(node, testPod("a", "", "", onNode("n")), testPod("b", "", "", onNode("n")), testPod("c", "", "", onNode("n")))
	expect(t, "max pods", filterResources(testState(testPod("p", "", "")), full), []string{"Too many pods"}, false)
	storage := testPod("p", "", "", func(p *v1.Pod) {
		p.Spec.Containers[0].Resources.Requests[v1.ResourceEphemeralStorage] = resource.MustParse("20Gi")
	})
	expect(t, "ephemeral storage", filterResources(testState(storage), busy), []string{"Insufficient ephemeral-storage"}, true)

	// Init containers run one at a time before the app containers: the pod
	// needs max(max(init), sum(app)), plus its overhead.
	initPod := testPod("p", "300m", "", func(p *v1.Pod) {
		p.Spec.InitContainers = []v1.Container{{Name: "i", Resources: v1.ResourceRequirements{Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse("400m")}}}}
		p.Spec.Containers = append(p.Spec.Containers, v1.Container{Name: "d", Resources: v1.ResourceRequirements{Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse("200m")}}})
	})
	if got := newPodInfo(initPod).req.milliCPU; got != 500 {
		t.Errorf("requests with init containers = %dm, want 500m", got)
	}
	expect(t, "init max vs app sum", filterResources(testState(initPod), busy), nil, false)
	initPod.Spec.Overhead = v1.ResourceList{v1.ResourceCPU: resource.MustParse("100m")}
	expect(t, "overhead counts", filterResources(testState(initPod), busy), []string{"Insufficient cpu"}, false)

	gpu := testNode("g", "2", "2Gi", 10, func(n *v1.Node) { n.Status.Allocatable["example.com/gpu"] = resource.MustParse("1") })
	wantsTwo := testPod("p", "", "", func(p *v1.Pod) {
		p.Spec.Containers[0].Resources.Requests["example.com/gpu"] = resource.MustParse("2")
	})
	expect(t, "extended resource", filterResources(testState(wantsTwo), testNodeInfo(gpu)), []string{"Insufficient example.com/gpu"}, true)
}

func TestAssumedPodsCount(t *testing.T) {
	c := testCache([]*v1.Node{testNode("n1", "1", "1Gi", 110)})
	a := newAlgorithm(c, nil, 1)
	if _, err := a.schedule(newPodInfo(testPod("a", "700m", ""))); err != nil {
		t.Fatalf("first pod: %v", err)
	}
	// The first pod is only assumed (no informer event yet): the second must
	// still see its cpu as taken.
	_, err := a.schedule(newPodInfo(testPod("b", "700m", "")))
	if err == nil || err.Error() != "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod." {
		t.Fatalf("second pod: %v", err)
	}
	// A forgotten assumption (failed binding) frees the cpu again.
	var uid = c.nodes["n1"].pods
	for u := range uid {
		c.forget(u)
	}
	if _, err := a.schedule(newPodInfo(testPod("b", "700m", ""))); err != nil {
		t.Fatalf("after forget: %v", err)
	}
}
