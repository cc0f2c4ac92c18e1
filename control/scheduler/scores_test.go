package scheduler

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

func antiAffinity(required bool, key string, kv ...string) func(*v1.Pod) {
	return func(p *v1.Pod) {
		term := v1.PodAffinityTerm{LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{kv[0]: kv[1]}}, TopologyKey: key}
		p.Spec.Affinity = &v1.Affinity{PodAntiAffinity: &v1.PodAntiAffinity{}}
		if required {
			p.Spec.Affinity.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution = []v1.PodAffinityTerm{term}
		} else {
			p.Spec.Affinity.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution = []v1.WeightedPodAffinityTerm{{Weight: 50, PodAffinityTerm: term}}
		}
	}
}

func podAffinity(required bool, key string, kv ...string) func(*v1.Pod) {
	return func(p *v1.Pod) {
		term := v1.PodAffinityTerm{LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{kv[0]: kv[1]}}, TopologyKey: key}
		p.Spec.Affinity = &v1.Affinity{PodAffinity: &v1.PodAffinity{}}
		if required {
			p.Spec.Affinity.PodAffinity.RequiredDuringSchedulingIgnoredDuringExecution = []v1.PodAffinityTerm{term}
		} else {
			p.Spec.Affinity.PodAffinity.PreferredDuringSchedulingIgnoredDuringExecution = []v1.WeightedPodAffinityTerm{{Weight: 50, PodAffinityTerm: term}}
		}
	}
}

// affinityCheck runs the inter-pod filter for pod on every node of c.
func affinityCheck(c *cache, pod *v1.Pod) map[string][]string {
	st := testState(pod)
	c.mu.Lock()
	defer c.mu.Unlock()
	st.affinity = newInterPodState(pod, c)
	out := map[string][]string{}
	for _, n := range c.nodeListLocked() {
		out[n.name] = reasonsOf(filterInterPodAffinity(st, n))
	}
	return out
}

func TestFilterInterPodAffinity(t *testing.T) {
	nodes := []*v1.Node{testNode("n1", "4", "4Gi", 10), testNode("n2", "4", "4Gi", 10), testNode("n3", "4", "4Gi", 10, func(n *v1.Node) { delete(n.Labels, v1.LabelHostname) })}
	db := testPod("db", "", "", withLabels("app", "db"), onNode("n1"))
	c := testCache(nodes, db)

	got := affinityCheck(c, testPod("p", "", "", antiAffinity(true, v1.LabelHostname, "app", "db")))
	if got["n1"] == nil || got["n1"][0] != "node(s) didn't match pod anti-affinity rules" || got["n2"] != nil || got["n3"] != nil {
		t.Errorf("anti-affinity: %v", got)
	}
	got = affinityCheck(c, testPod("p", "", "", podAffinity(true, v1.LabelHostname, "app", "db")))
	if got["n1"] != nil || got["n2"] == nil || got["n2"][0] != "node(s) didn't match pod affinity rules" || got["n3"] == nil {
		t.Errorf("affinity: %v", got)
	}
	// The first pod of a self-affine group may go anywhere with the key.
	got = affinityCheck(c, testPod("p", "", "", withLabels("app", "cache"), podAffinity(true, v1.LabelHostname, "app", "cache")))
	if got["n1"] != nil || got["n2"] != nil || got["n3"] == nil {
		t.Errorf("first of a group: %v", got)
	}
	// An existing pod's anti-affinity keeps matching pods off its node.
	lonely := testPod("lonely", "", "", antiAffinity(true, v1.LabelHostname, "app", "web"), onNode("n2"))
	c.setPod(newPodInfo(lonely))
	got = affinityCheck(c, testPod("p", "", "", withLabels("app", "web")))
	if got["n2"] == nil || got["n2"][0] != "node(s) didn't satisfy existing pods anti-affinity rules" || got["n1"] != nil {
		t.Errorf("existing anti-affinity: %v", got)
	}
	got = affinityCheck(c, testPod("p", "", "", withLabels("app", "other")))
	if got["n2"] != nil {
		t.Errorf("existing anti-affinity applied to a non-matching pod: %v", got)
	}
}

// rawScores runs one scorer with its normalization over the nodes.
func rawScores(sc func(*podState, *nodeInfo) int64, norm func([]int64), st *podState, nodes ...*nodeInfo) []int64 {
	out := make([]int64, len(nodes))
	for i, n := range nodes {
		out[i] = sc(st, n)
	}
	if norm != nil {
		norm(out)
	}
	return out
}

func TestScoreLeastAllocated(t *testing.T) {
	empty := testNodeInfo(testNode("a", "2", "2Gi", 10))
	half := testNodeInfo(testNode("b", "2", "2Gi", 10), testPod("x", "1", "1Gi", onNode("b")))
	s := rawScores(scoreLeastAllocated, nil, testState(testPod("p", "500m", "512Mi")), empty, half)
	if s[0] != 75 || s[1] != 25 {
		t.Errorf("least allocated = %v, want [75 25]", s)
	}
	// Request-less pods count at 100m/200Mi so they still spread.
	s = rawScores(scoreLeastAllocated, nil, testState(testPod("p", "", "")), empty, half)
	if s[0] <= s[1] {
		t.Errorf("request-less pod: %v", s)
	}
}

func TestScoreBalancedAllocation(t *testing.T) {
	node := testNode("a", "2", "2Gi", 10)
	balanced := rawScores(scoreBalancedAllocation, nil, testState(testPod("p", "1", "1Gi")), testNodeInfo(node))
	skewed := rawScores(scoreBalancedAllocation, nil, testState(testPod("p", "2", "1")), testNodeInfo(node))
	if balanced[0] != 100 || skewed[0] >= balanced[0] || skewed[0] < 49 || skewed[0] > 51 {
		t.Errorf("balanced = %v, skewed = %v", balanced, skewed)
	}
}

func TestScoreOwnerSpread(t *testing.T) {
	owned := func(p *v1.Pod) {
		p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "rs", UID: types.UID("rs-1"), Controller: ptr.To(true)}}
	}
	a := testNodeInfo(testNode("a", "4", "4Gi", 10), testPod("x", "", "", owned, onNode("a")), testPod("y", "", "", owned, onNode("a")))
	b := testNodeInfo(testNode("b", "4", "4Gi", 10), testPod("z", "", "", owned, onNode("b")))
	c := testNodeInfo(testNode("c", "4", "4Gi", 10), testPod("other", "", "", onNode("c")))
	s := rawScores(scoreOwnerSpread, normalizeReverse, testState(testPod("p", "", "", owned)), a, b, c)
	if s[0] != 0 || s[1] != 50 || s[2] != 100 {
		t.Errorf("owner spread = %v, want [0 50 100]", s)
	}
}

func TestScoreNodeAffinityPreferred(t *testing.T) {
	pod := testPod("p", "", "", func(p *v1.Pod) {
		p.Spec.Affinity = &v1.Affinity{NodeAffinity: &v1.NodeAffinity{PreferredDuringSchedulingIgnoredDuringExecution: []v1.PreferredSchedulingTerm{
			{Weight: 80, Preference: v1.NodeSelectorTerm{MatchExpressions: []v1.NodeSelectorRequirement{{Key: "zone", Operator: v1.NodeSelectorOpIn, Values: []string{"a"}}}}},
			{Weight: 20, Preference: v1.NodeSelectorTerm{MatchExpressions: []v1.NodeSelectorRequirement{{Key: "disk", Operator: v1.NodeSelectorOpExists}}}},
		}}}
	})
	both := testNodeInfo(testNode("both", "1", "1Gi", 10, nodeLabels("zone", "a", "disk", "ssd")))
	zone := testNodeInfo(testNode("zone", "1", "1Gi", 10, nodeLabels("zone", "a")))
	none := testNodeInfo(testNode("none", "1", "1Gi", 10))
	s := rawScores(scoreNodeAffinity, normalizeMax, testState(pod), both, zone, none)
	if s[0] != 100 || s[1] != 80 || s[2] != 0 {
		t.Errorf("node affinity = %v, want [100 80 0]", s)
	}
}

func TestScoreTaintToleration(t *testing.T) {
	soft := func(k string) v1.Taint { return v1.Taint{Key: k, Effect: v1.TaintEffectPreferNoSchedule} }
	two := testNodeInfo(testNode("two", "1", "1Gi", 10, taints(soft("a"), soft("b"))))
	one := testNodeInfo(testNode("one", "1", "1Gi", 10, taints(soft("a"))))
	clean := testNodeInfo(testNode("clean", "1", "1Gi", 10))
	s := rawScores(scoreTaintToleration, normalizeReverse, testState(testPod("p", "", "")), two, one, clean)
	if s[0] != 0 || s[1] != 50 || s[2] != 100 {
		t.Errorf("taint toleration = %v, want [0 50 100]", s)
	}
	tol := testState(testPod("p", "", "", tolerate(v1.Toleration{Key: "a", Operator: v1.TolerationOpExists, Effect: v1.TaintEffectPreferNoSchedule})))
	s = rawScores(scoreTaintToleration, normalizeReverse, tol, two, one, clean)
	if s[0] != 0 || s[1] != 100 || s[2] != 100 {
		t.Errorf("with toleration = %v, want [0 100 100]", s)
	}
}

func TestScoreInterPodAffinityPreferred(t *testing.T) {
	nodes := []*v1.Node{testNode("n1", "4", "4Gi", 10), testNode("n2", "4", "4Gi", 10)}
	c := testCache(nodes, testPod("db", "", "", withLabels("app", "db"), onNode("n1")))
	score := func(pod *v1.Pod) []int64 {
		st := testState(pod)
		c.mu.Lock()
		defer c.mu.Unlock()
		st.affinity = newInterPodState(pod, c)
		return rawScores(scoreInterPodAffinity, normalizeMinMax, st, c.nodeListLocked()...)
	}
	if s := score(testPod("p", "", "", podAffinity(false, v1.LabelHostname, "app", "db"))); s[0] != 100 || s[1] != 0 {
		t.Errorf("preferred affinity = %v, want [100 0]", s)
	}
	if s := score(testPod("p", "", "", antiAffinity(false, v1.LabelHostname, "app", "db"))); s[0] != 0 || s[1] != 100 {
		t.Errorf("preferred anti-affinity = %v, want [0 100]", s)
	}
}

func TestSelectHostSpreadsTies(t *testing.T) {
	nodes := []*v1.Node{testNode("a", "4", "4Gi", 110), testNode("b", "4", "4Gi", 110), testNode("c", "4", "4Gi", 110)}
	c := testCache(nodes)
	a := newAlgorithm(c, nil, 7)
	per := map[string]int{}
	for range 30 {
		node, err := a.schedule(newPodInfo(testPod("p", "100m", "100Mi")))
		if err != nil {
			t.Fatal(err)
		}
		per[node]++
	}
	// Least-allocated keeps the three nodes within one pod of each other.
	if per["a"] != 10 || per["b"] != 10 || per["c"] != 10 {
		t.Errorf("pods per node = %v", per)
	}
}

func TestNumFeasibleNodesToFind(t *testing.T) {
	for _, tc := range []struct{ nodes, pct, want int }{
		{10, 0, 10}, {100, 0, 100}, {1000, 0, 420}, {5000, 0, 500}, {300, 0, 144}, {200, 0, 100}, {1000, 10, 100}, {1000, 100, 1000},
	} {
		if got := numFeasibleNodesToFind(tc.nodes, tc.pct); got != tc.want {
			t.Errorf("numFeasibleNodesToFind(%d, %d) = %d, want %d", tc.nodes, tc.pct, got, tc.want)
		}
	}
}
