package scheduler

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	nodev1listers "k8s.io/client-go/listers/node/v1"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
)

const (
	// WasmNodeLabel marks nodes whose agent runs wasm containers.
	WasmNodeLabel = "wasmkube.io/wasm"
	// WasmRuntimeAnnotation set to "wasm" asks for the wasm runtime without
	// naming a RuntimeClass.
	WasmRuntimeAnnotation = "wasmkube.io/runtime"
	// WasmRuntimeClass is the RuntimeClass (and its handler) of wasm pods.
	WasmRuntimeClass = "wasm"
)

// errNoNodes is upstream's message when the cluster has no nodes at all.
var errNoNodes = errors.New("no nodes available to schedule pods")

// needsWasm says whether a pod must run on a wasm-capable node.
func needsWasm(pod *v1.Pod) bool {
	if rc := pod.Spec.RuntimeClassName; rc != nil && *rc == WasmRuntimeClass {
		return true
	}
	return pod.Annotations[WasmRuntimeAnnotation] == WasmRuntimeClass
}

// newPodState prepares a pod for a cycle. rcs may be nil (no RuntimeClasses
// known).
func newPodState(pi *podInfo, rcs nodev1listers.RuntimeClassLister) *podState {
	pod := pi.pod
	st := &podState{
		pi:               pi,
		tolerations:      pod.Spec.Tolerations,
		requiredAffinity: nodeaffinity.GetRequiredNodeAffinity(pod),
	}
	addSelector := func(sel map[string]string) {
		if len(sel) == 0 {
			return
		}
		if st.extraSelector == nil {
			st.extraSelector = map[string]string{}
		}
		for k, v := range sel {
			st.extraSelector[k] = v
		}
	}
	if name := pod.Spec.RuntimeClassName; name != nil && *name != "" {
		var err error = apierrors.NewNotFound(v1.Resource("runtimeclasses"), *name)
		if rcs != nil {
			if got, gerr := rcs.Get(*name); gerr == nil {
				err = nil
				if s := got.Scheduling; s != nil {
					addSelector(s.NodeSelector)
					if len(s.Tolerations) > 0 {
						st.tolerations = append(append([]v1.Toleration(nil), pod.Spec.Tolerations...), s.Tolerations...)
					}
				}
			}
		}
		// A missing "wasm" class is only a start-up race with
		// EnsureWasmRuntimeClass: the wasm label rule below still applies.
		if err != nil && *name != WasmRuntimeClass {
			st.preFilterMsg = fmt.Sprintf("pod rejected: RuntimeClass %q not found", *name)
		}
	}
	if needsWasm(pod) {
		addSelector(map[string]string{WasmNodeLabel: "true"})
	}
	if a := pod.Spec.Affinity; a != nil && a.NodeAffinity != nil && len(a.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution) > 0 {
		if p, err := nodeaffinity.NewPreferredSchedulingTerms(a.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution); err == nil {
			st.preferred = p
		}
	}
	for name := range pi.req.scalar {
		st.scalarNames = append(st.scalarNames, name)
	}
	sort.Slice(st.scalarNames, func(i, j int) bool { return st.scalarNames[i] < st.scalarNames[j] })
	return st
}

// algorithm is the filter/score/select part of a cycle, separate from the
// queue and the API so that tests can drive it on an in-memory cache.
type algorithm struct {
	cache   *cache
	rcs     nodev1listers.RuntimeClassLister
	volumes *volumeListers
	// percentageOfNodesToScore is upstream's knob; 0 means adaptive.
	percentageOfNodesToScore int
	// nextStart rotates where the search for feasible nodes starts, so
	// that sampling does not always favour the same nodes.
	nextStart int
	rng       *rand.Rand
}

func newAlgorithm(c *cache, rcs nodev1listers.RuntimeClassLister, seed uint64) *algorithm {
	return &algorithm{cache: c, rcs: rcs, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// numFeasibleNodesToFind is upstream's sampling rule: every node up to 100,
// then an adaptive percentage (50% minus 1% per 125 nodes, at least 5%),
// never fewer than 100.
func numFeasibleNodesToFind(numNodes, percentage int) int {
	const minNodes, minPercentage = 100, 5
	if numNodes < minNodes || percentage >= 100 {
		return numNodes
	}
	if percentage <= 0 {
		percentage = max(50-numNodes/125, minPercentage)
	}
	return max(numNodes*percentage/100, minNodes)
}

// schedule picks a node for the pod and assumes it there. On failure it
// returns errNoNodes or a *fitError.
func (a *algorithm) schedule(pi *podInfo) (string, error) {
	st := newPodState(pi, a.rcs)
	vols, volMsg, err := a.volumes.prefilter(pi.pod)
	if err != nil {
		return "", err
	}
	st.volumes = vols
	if st.preFilterMsg == "" {
		st.preFilterMsg = volMsg
	}
	c := a.cache
	c.mu.Lock()
	defer c.mu.Unlock()
	nodes := c.nodeListLocked()
	if len(nodes) == 0 {
		return "", errNoNodes
	}
	if st.preFilterMsg != "" {
		return "", &fitError{pod: pi.pod, numAllNodes: len(nodes), preFilterMsg: st.preFilterMsg}
	}
	st.affinity = newInterPodState(pi.pod, c)

	want := numFeasibleNodesToFind(len(nodes), a.percentageOfNodesToScore)
	feasible := make([]*nodeInfo, 0, min(want, len(nodes)))
	var failed map[string]*status
	start := a.nextStart % len(nodes)
	processed := 0
	for i := range nodes {
		n := nodes[(start+i)%len(nodes)]
		processed++
		if s := runFilters(st, n); s != nil {
			if failed == nil {
				failed = map[string]*status{}
			}
			failed[n.name] = s
			continue
		}
		feasible = append(feasible, n)
		if len(feasible) >= want {
			break
		}
	}
	a.nextStart = (start + processed) % len(nodes)
	if len(feasible) == 0 {
		return "", &fitError{pod: pi.pod, numAllNodes: len(nodes), statuses: failed}
	}
	best := feasible[0]
	if len(feasible) > 1 {
		best = a.selectHost(feasible, scoreNodes(st, feasible))
	}
	c.assumeLocked(pi, best.name)
	return best.name, nil
}

// runFilters returns the first failing filter's status, as upstream stops at
// the first plugin that rejects a node.
func runFilters(st *podState, n *nodeInfo) *status {
	for _, f := range filters {
		if s := f(st, n); s != nil {
			return s
		}
	}
	return nil
}

// scoreNodes returns the weighted sum of every applicable score per node.
func scoreNodes(st *podState, nodes []*nodeInfo) []int64 {
	total := make([]int64, len(nodes))
	buf := make([]int64, len(nodes))
	for _, sc := range scorers {
		if sc.skip != nil && sc.skip(st) {
			continue
		}
		for i, n := range nodes {
			buf[i] = sc.score(st, n)
		}
		if sc.normalize != nil {
			sc.normalize(buf)
		}
		for i := range buf {
			total[i] += sc.weight * buf[i]
		}
	}
	return total
}

// selectHost takes the highest score, choosing uniformly among ties
// (reservoir sampling, as upstream) so equal nodes share the load.
func (a *algorithm) selectHost(nodes []*nodeInfo, scores []int64) *nodeInfo {
	best, ties := 0, 1
	for i := 1; i < len(nodes); i++ {
		switch {
		case scores[i] > scores[best]:
			best, ties = i, 1
		case scores[i] == scores[best]:
			ties++
			if a.rng.IntN(ties) == 0 {
				best = i
			}
		}
	}
	return nodes[best]
}

// fitError is upstream's FitError: why a pod fits no node.
type fitError struct {
	pod          *v1.Pod
	numAllNodes  int
	preFilterMsg string
	statuses     map[string]*status
}

// Error renders upstream's message: "0/N nodes are available: <prefilter
// message or sorted reason histogram>. preemption: <preemption message>".
func (f *fitError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "0/%d nodes are available:", f.numAllNodes)
	if f.preFilterMsg != "" {
		fmt.Fprintf(&b, " %s.", f.preFilterMsg)
	} else {
		counts := map[string]int{}
		for _, s := range f.statuses {
			for _, r := range s.reasons {
				counts[r]++
			}
		}
		if h := histogram(counts); h != "" {
			fmt.Fprintf(&b, " %s.", h)
		}
	}
	b.WriteString(" preemption: ")
	b.WriteString(f.preemptionMessage())
	return b.String()
}

// preemptionMessage is what upstream's DefaultPreemption reports when it
// finds no victims. This scheduler never preempts: nodes preemption could in
// principle help are reported as upstream reports nodes without
// lower-priority pods.
func (f *fitError) preemptionMessage() string {
	if p := f.pod.Spec.PreemptionPolicy; p != nil && *p == v1.PreemptNever {
		return "not eligible due to preemptionPolicy=Never."
	}
	counts := map[string]int{}
	helpable := 0
	if f.preFilterMsg == "" {
		for _, s := range f.statuses {
			if !s.unresolvable {
				helpable++
			}
		}
	}
	if helpable > 0 {
		counts["No preemption victims found for incoming pod"] = helpable
	}
	if rest := f.numAllNodes - helpable; rest > 0 {
		counts["Preemption is not helpful for scheduling"] = rest
	}
	return fmt.Sprintf("0/%d nodes are available: %s.", f.numAllNodes, histogram(counts))
}

// histogram is "<count> <reason>" entries sorted as strings, as upstream's
// sortReasonsHistogram does.
func histogram(counts map[string]int) string {
	entries := make([]string, 0, len(counts))
	for r, n := range counts {
		entries = append(entries, fmt.Sprintf("%d %s", n, r))
	}
	sort.Strings(entries)
	return strings.Join(entries, ", ")
}
