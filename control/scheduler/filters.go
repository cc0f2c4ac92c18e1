package scheduler

import (
	"fmt"

	"github.com/go-logr/logr"
	v1 "k8s.io/api/core/v1"
	v1helper "k8s.io/component-helpers/scheduling/corev1"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
)

// Upstream's filter reasons, word for word: users search for them, and tools
// parse FailedScheduling messages.
const (
	reasonUnschedulable     = "node(s) were unschedulable"
	reasonNodeAffinity      = "node(s) didn't match Pod's node affinity/selector"
	reasonPorts             = "node(s) didn't have free ports for the requested pod ports"
	reasonTooManyPods       = "Too many pods"
	reasonAffinity          = "node(s) didn't match pod affinity rules"
	reasonAntiAffinity      = "node(s) didn't match pod anti-affinity rules"
	reasonExistingAntiAffin = "node(s) didn't satisfy existing pods anti-affinity rules"
)

// status is one node's filter failure: the reasons of the first filter that
// rejected it, and whether preemption could never help (upstream's
// UnschedulableAndUnresolvable).
type status struct {
	reasons      []string
	unresolvable bool
}

func unresolvable(reason string) *status {
	return &status{reasons: []string{reason}, unresolvable: true}
}
func resolvable(reason string) *status { return &status{reasons: []string{reason}} }

// filter is one predicate; nil means the node passes.
type filter func(st *podState, n *nodeInfo) *status

// filters run in upstream's default plugin order, which decides the reason
// reported for a node failing several of them.
var filters = []filter{
	filterUnschedulable,
	filterReady,
	filterTaints,
	filterNodeAffinity,
	filterPorts,
	filterResources,
	filterVolumeBinding,
	filterInterPodAffinity,
}

// noLog: the toleration helpers want a logger for debug output we do not use.
var noLog = logr.Discard()

var unschedulableTaint = v1.Taint{Key: v1.TaintNodeUnschedulable, Effect: v1.TaintEffectNoSchedule}

// filterUnschedulable rejects cordoned nodes (spec.unschedulable), unless the
// pod tolerates node.kubernetes.io/unschedulable as DaemonSet pods do.
func filterUnschedulable(st *podState, n *nodeInfo) *status {
	if !n.node.Spec.Unschedulable {
		return nil
	}
	if v1helper.TolerationsTolerateTaint(noLog, st.tolerations, &unschedulableTaint, false) {
		return nil
	}
	return unresolvable(reasonUnschedulable)
}

// filterReady rejects nodes whose Ready condition is not True, through the
// not-ready/unreachable taint upstream's lifecycle controller would add.
func filterReady(st *podState, n *nodeInfo) *status {
	if n.notReady == nil || v1helper.TolerationsTolerateTaint(noLog, st.tolerations, n.notReady, false) {
		return nil
	}
	return unresolvable(taintReason(n.notReady))
}

func taintReason(t *v1.Taint) string {
	return fmt.Sprintf("node(s) had untolerated taint {%s: %s}", t.Key, t.Value)
}

func doNotSchedule(t *v1.Taint) bool {
	return t.Effect == v1.TaintEffectNoSchedule || t.Effect == v1.TaintEffectNoExecute
}

// filterTaints rejects nodes with a NoSchedule or NoExecute taint the pod
// (with its RuntimeClass's tolerations) does not tolerate.
func filterTaints(st *podState, n *nodeInfo) *status {
	if len(n.node.Spec.Taints) == 0 {
		return nil
	}
	taint, untolerated := v1helper.FindMatchingUntoleratedTaint(noLog, n.node.Spec.Taints, st.tolerations, doNotSchedule, false)
	if !untolerated {
		return nil
	}
	return unresolvable(taintReason(&taint))
}

// filterNodeAffinity checks spec.nodeSelector, the required node affinity,
// the RuntimeClass's nodeSelector and the wasm runtime label, all reported as
// upstream reports a nodeSelector mismatch (RuntimeClass admission merges its
// selector into the pod's there).
func filterNodeAffinity(st *podState, n *nodeInfo) *status {
	if ok, _ := st.requiredAffinity.Match(n.node); !ok {
		return unresolvable(reasonNodeAffinity)
	}
	for k, v := range st.extraSelector {
		if got, ok := n.node.Labels[k]; !ok || got != v {
			return unresolvable(reasonNodeAffinity)
		}
	}
	return nil
}

// filterPorts rejects nodes where a requested host port is taken; 0.0.0.0
// conflicts with every address.
func filterPorts(st *podState, n *nodeInfo) *status {
	for _, p := range st.pi.ports {
		ips := n.ports[p.protoPort]
		if len(ips) == 0 {
			continue
		}
		if p.ip == "0.0.0.0" || ips["0.0.0.0"] > 0 || ips[p.ip] > 0 {
			return resolvable(reasonPorts)
		}
	}
	return nil
}

// filterResources compares the pod's requests (init containers as max, app
// containers as sum, plus overhead) with what is left of the node's
// allocatable. Upstream reports every insufficient resource, pods first; a
// request larger than the whole node cannot be helped by preemption.
func filterResources(st *podState, n *nodeInfo) *status {
	var s *status
	fail := func(reason string, never bool) {
		if s == nil {
			s = &status{}
		}
		s.reasons = append(s.reasons, reason)
		s.unresolvable = s.unresolvable || never
	}
	if int64(len(n.pods))+1 > n.allowedPods {
		fail(reasonTooManyPods, false)
	}
	r := &st.pi.req
	if r.milliCPU > 0 && r.milliCPU > n.alloc.milliCPU-n.requested.milliCPU {
		fail("Insufficient cpu", r.milliCPU > n.alloc.milliCPU)
	}
	if r.memory > 0 && r.memory > n.alloc.memory-n.requested.memory {
		fail("Insufficient memory", r.memory > n.alloc.memory)
	}
	if r.ephemeral > 0 && r.ephemeral > n.alloc.ephemeral-n.requested.ephemeral {
		fail("Insufficient ephemeral-storage", r.ephemeral > n.alloc.ephemeral)
	}
	for _, name := range st.scalarNames {
		want := r.scalar[name]
		if want > 0 && want > n.alloc.scalar[name]-n.requested.scalar[name] {
			fail(fmt.Sprintf("Insufficient %s", name), want > n.alloc.scalar[name])
		}
	}
	return s
}

// podState is a pod prepared for one scheduling cycle: everything derived
// from the pod alone, so the per-node work is only comparisons.
type podState struct {
	pi               *podInfo
	tolerations      []v1.Toleration
	requiredAffinity nodeaffinity.RequiredNodeAffinity
	// extraSelector is the RuntimeClass's nodeSelector plus the wasm label.
	extraSelector map[string]string
	preferred     *nodeaffinity.PreferredSchedulingTerms
	scalarNames   []v1.ResourceName
	affinity      *interPodState
	volumes       *podVolumes
	// preFilterMsg makes the pod unschedulable on every node, such as a
	// RuntimeClass that does not exist.
	preFilterMsg string
}
