package scheduler

import v1 "k8s.io/api/core/v1"

type topologyPair struct{ key, value string }

// interPodState is the inter-pod affinity of one pod against the current
// cache, computed once per cycle (upstream's PreFilter): counts of matching
// pods per topology domain, so that each node is then a few map lookups.
type interPodState struct {
	affinity     []affinityTerm
	antiAffinity []affinityTerm
	preferred    []affinityTerm
	// affinityCounts counts pods matching every required affinity term.
	affinityCounts map[topologyPair]int
	antiCounts     map[topologyPair]int
	// existingAnti are domains where an existing pod's required
	// anti-affinity rejects this pod.
	existingAnti map[topologyPair]bool
	preferredSum map[topologyPair]int64
	preferredKey map[string]bool
	// selfMatch: the pod matches all of its own affinity terms, which lets
	// the first pod of a group that wants to be together go anywhere.
	selfMatch bool
}

// newInterPodState returns nil when neither the pod nor any existing pod has
// inter-pod rules that concern it, the common case that costs nothing.
func newInterPodState(pod *v1.Pod, c *cache) *interPodState {
	s := &interPodState{}
	if a := pod.Spec.Affinity; a != nil {
		if pa := a.PodAffinity; pa != nil {
			s.affinity = newAffinityTerms(pod, pa.RequiredDuringSchedulingIgnoredDuringExecution)
			s.preferred = append(s.preferred, newWeightedAffinityTerms(pod, pa.PreferredDuringSchedulingIgnoredDuringExecution, 1)...)
		}
		if pa := a.PodAntiAffinity; pa != nil {
			s.antiAffinity = newAffinityTerms(pod, pa.RequiredDuringSchedulingIgnoredDuringExecution)
			s.preferred = append(s.preferred, newWeightedAffinityTerms(pod, pa.PreferredDuringSchedulingIgnoredDuringExecution, -1)...)
		}
	}
	for uid, other := range c.antiAffinityPods {
		if uid == pod.UID {
			continue
		}
		n := c.nodes[c.podNode[uid]]
		if n == nil || n.node == nil {
			continue
		}
		for i := range other.antiAffinity {
			t := &other.antiAffinity[i]
			if v, ok := n.node.Labels[t.topologyKey]; ok && t.matches(pod) {
				if s.existingAnti == nil {
					s.existingAnti = map[topologyPair]bool{}
				}
				s.existingAnti[topologyPair{t.topologyKey, v}] = true
			}
		}
	}
	if len(s.affinity) == 0 && len(s.antiAffinity) == 0 && len(s.preferred) == 0 {
		if s.existingAnti == nil {
			return nil
		}
		return s
	}
	s.affinityCounts = map[topologyPair]int{}
	s.antiCounts = map[topologyPair]int{}
	s.preferredSum = map[topologyPair]int64{}
	s.preferredKey = map[string]bool{}
	for _, t := range s.preferred {
		s.preferredKey[t.topologyKey] = true
	}
	s.selfMatch = allMatch(s.affinity, pod)
	for _, n := range c.nodes {
		if n.node == nil {
			continue
		}
		labels := n.node.Labels
		for _, other := range n.pods {
			p := other.pod
			if p.UID == pod.UID {
				continue
			}
			if len(s.affinity) > 0 && allMatch(s.affinity, p) {
				for _, t := range s.affinity {
					if v, ok := labels[t.topologyKey]; ok {
						s.affinityCounts[topologyPair{t.topologyKey, v}]++
					}
				}
			}
			for _, t := range s.antiAffinity {
				if v, ok := labels[t.topologyKey]; ok && t.matches(p) {
					s.antiCounts[topologyPair{t.topologyKey, v}]++
				}
			}
			for _, t := range s.preferred {
				if v, ok := labels[t.topologyKey]; ok && t.matches(p) {
					s.preferredSum[topologyPair{t.topologyKey, v}] += t.weight
				}
			}
		}
	}
	return s
}

func allMatch(terms []affinityTerm, p *v1.Pod) bool {
	for i := range terms {
		if !terms[i].matches(p) {
			return false
		}
	}
	return true
}

// filterInterPodAffinity applies required pod affinity, required pod
// anti-affinity, and existing pods' required anti-affinity, in upstream's
// order.
func filterInterPodAffinity(st *podState, n *nodeInfo) *status {
	s := st.affinity
	if s == nil {
		return nil
	}
	labels := n.node.Labels
	if len(s.affinity) > 0 {
		ok := true
		if len(s.affinityCounts) == 0 && s.selfMatch {
			// No pod matches yet: the pod may start the group, on any node
			// that has the topology keys.
			for _, t := range s.affinity {
				if _, has := labels[t.topologyKey]; !has {
					ok = false
				}
			}
		} else {
			for _, t := range s.affinity {
				v, has := labels[t.topologyKey]
				if !has || s.affinityCounts[topologyPair{t.topologyKey, v}] == 0 {
					ok = false
				}
			}
		}
		if !ok {
			return unresolvable(reasonAffinity)
		}
	}
	for _, t := range s.antiAffinity {
		if v, has := labels[t.topologyKey]; has && s.antiCounts[topologyPair{t.topologyKey, v}] > 0 {
			return resolvable(reasonAntiAffinity)
		}
	}
	for pair := range s.existingAnti {
		if v, has := labels[pair.key]; has && v == pair.value {
			return resolvable(reasonExistingAntiAffin)
		}
	}
	return nil
}

// scoreInterPodAffinity sums the weights of preferred terms satisfied by the
// node's topology domains (negative for anti-affinity); normalized min-max.
func scoreInterPodAffinity(st *podState, n *nodeInfo) int64 {
	s := st.affinity
	if s == nil || len(s.preferredSum) == 0 {
		return 0
	}
	var sum int64
	for key := range s.preferredKey {
		if v, ok := n.node.Labels[key]; ok {
			sum += s.preferredSum[topologyPair{key, v}]
		}
	}
	return sum
}
