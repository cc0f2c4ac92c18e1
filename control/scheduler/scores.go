package scheduler

import (
	v1 "k8s.io/api/core/v1"
	v1helper "k8s.io/component-helpers/scheduling/corev1"
)

const maxScore = 100

// scorer is one score plugin: a raw per-node score, then a normalization
// over all feasible nodes to 0..100, then a weight.
type scorer struct {
	name      string
	weight    int64
	score     func(st *podState, n *nodeInfo) int64
	normalize func(scores []int64)
	// skip says the score would be the same on every node for this pod, so
	// computing it is wasted work.
	skip func(st *podState) bool
}

// scorers use upstream's default weights; owner spreading takes the weight of
// upstream's PodTopologySpread, whose default constraints it approximates.
var scorers = []scorer{
	{name: "TaintToleration", weight: 3, score: scoreTaintToleration, normalize: normalizeReverse},
	{name: "NodeAffinity", weight: 2, score: scoreNodeAffinity, normalize: normalizeMax,
		skip: func(st *podState) bool { return st.preferred == nil }},
	{name: "InterPodAffinity", weight: 2, score: scoreInterPodAffinity, normalize: normalizeMinMax,
		skip: func(st *podState) bool { return st.affinity == nil || len(st.affinity.preferredSum) == 0 }},
	{name: "OwnerSpread", weight: 2, score: scoreOwnerSpread, normalize: normalizeReverse,
		skip: func(st *podState) bool { return st.pi.owner == "" }},
	{name: "LeastAllocated", weight: 1, score: scoreLeastAllocated},
	{name: "BalancedAllocation", weight: 1, score: scoreBalancedAllocation},
}

// scoreLeastAllocated favours nodes with the most cpu and memory left after
// placing the pod, counting request-less containers at upstream's defaults.
func scoreLeastAllocated(st *podState, n *nodeInfo) int64 {
	least := func(requested, capacity int64) int64 {
		if capacity <= 0 || requested > capacity {
			return 0
		}
		return (capacity - requested) * maxScore / capacity
	}
	cpu := least(n.nonZeroCPU+st.pi.nonZeroCPU, n.alloc.milliCPU)
	mem := least(n.nonZeroMem+st.pi.nonZeroMem, n.alloc.memory)
	return (cpu + mem) / 2
}

// scoreBalancedAllocation favours nodes whose cpu and memory fractions stay
// close to each other, so that neither runs out while the other idles.
func scoreBalancedAllocation(st *podState, n *nodeInfo) int64 {
	frac := func(requested, capacity int64) float64 {
		if capacity <= 0 {
			return 1
		}
		f := float64(requested) / float64(capacity)
		if f > 1 {
			return 1
		}
		return f
	}
	cpu := frac(n.nonZeroCPU+st.pi.nonZeroCPU, n.alloc.milliCPU)
	mem := frac(n.nonZeroMem+st.pi.nonZeroMem, n.alloc.memory)
	std := cpu - mem
	if std < 0 {
		std = -std
	}
	std /= 2
	return int64((1 - std) * maxScore)
}

// scoreOwnerSpread counts the pods of the same controller already on the
// node; normalizeReverse turns fewer into better.
func scoreOwnerSpread(st *podState, n *nodeInfo) int64 {
	return int64(n.owners[st.pi.owner])
}

func scoreNodeAffinity(st *podState, n *nodeInfo) int64 {
	if st.preferred == nil {
		return 0
	}
	return st.preferred.Score(n.node)
}

// scoreTaintToleration counts PreferNoSchedule taints the pod does not
// tolerate; normalizeReverse turns fewer into better. Tolerations for other
// effects never match such a taint, so all of the pod's can be passed.
func scoreTaintToleration(st *podState, n *nodeInfo) int64 {
	var count int64
	for i := range n.node.Spec.Taints {
		t := &n.node.Spec.Taints[i]
		if t.Effect != v1.TaintEffectPreferNoSchedule {
			continue
		}
		if !v1helper.TolerationsTolerateTaint(noLog, st.tolerations, t, false) {
			count++
		}
	}
	return count
}

// normalizeMax scales to 0..100 by the highest score.
func normalizeMax(scores []int64) {
	var hi int64
	for _, s := range scores {
		hi = max(hi, s)
	}
	for i := range scores {
		if hi == 0 {
			scores[i] = 0
		} else {
			scores[i] = scores[i] * maxScore / hi
		}
	}
}

// normalizeReverse scales to 0..100 with the lowest raw value best.
func normalizeReverse(scores []int64) {
	var hi int64
	for _, s := range scores {
		hi = max(hi, s)
	}
	for i := range scores {
		if hi == 0 {
			scores[i] = maxScore
		} else {
			scores[i] = maxScore - scores[i]*maxScore/hi
		}
	}
}

// normalizeMinMax maps the lowest score to 0 and the highest to 100, as
// upstream does for inter-pod affinity whose raw sums may be negative.
func normalizeMinMax(scores []int64) {
	if len(scores) == 0 {
		return
	}
	lo, hi := scores[0], scores[0]
	for _, s := range scores {
		lo, hi = min(lo, s), max(hi, s)
	}
	for i := range scores {
		if hi == lo {
			scores[i] = 0
		} else {
			scores[i] = (scores[i] - lo) * maxScore / (hi - lo)
		}
	}
}
