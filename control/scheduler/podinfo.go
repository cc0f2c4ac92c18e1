package scheduler

import (
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	resourcehelper "k8s.io/component-helpers/resource"
)

// Upstream's defaults for containers without requests, used only for
// scoring, so that many request-less pods still spread across nodes.
const (
	defaultMilliCPURequest = 100
	defaultMemoryRequest   = 200 * 1024 * 1024
)

var nonZeroDefaults = v1.ResourceList{
	v1.ResourceCPU:    *resource.NewMilliQuantity(defaultMilliCPURequest, resource.DecimalSI),
	v1.ResourceMemory: *resource.NewQuantity(defaultMemoryRequest, resource.BinarySI),
}

// resources are integer sums, cheaper to add and compare in every cycle
// than resource.Quantity values.
type resources struct {
	milliCPU  int64
	memory    int64
	ephemeral int64
	scalar    map[v1.ResourceName]int64
}

func resourcesFrom(list v1.ResourceList) resources {
	var r resources
	for name, q := range list {
		switch name {
		case v1.ResourceCPU:
			r.milliCPU = q.MilliValue()
		case v1.ResourceMemory:
			r.memory = q.Value()
		case v1.ResourceEphemeralStorage:
			r.ephemeral = q.Value()
		case v1.ResourcePods:
		default:
			if isScalarResource(name) {
				if r.scalar == nil {
					r.scalar = map[v1.ResourceName]int64{}
				}
				r.scalar[name] = q.Value()
			}
		}
	}
	return r
}

// isScalarResource: extended resources (vendor.example/gpu) and hugepages,
// the ones upstream's NodeResourcesFit counts besides cpu/memory/storage.
func isScalarResource(name v1.ResourceName) bool {
	s := string(name)
	return strings.HasPrefix(s, v1.ResourceHugePagesPrefix) || strings.Contains(s, "/")
}

func (r *resources) add(o *resources, sign int64) {
	r.milliCPU += sign * o.milliCPU
	r.memory += sign * o.memory
	r.ephemeral += sign * o.ephemeral
	for k, v := range o.scalar {
		if r.scalar == nil {
			r.scalar = map[v1.ResourceName]int64{}
		}
		r.scalar[k] += sign * v
	}
}

type protoPort struct {
	protocol v1.Protocol
	port     int32
}

type hostPort struct {
	protoPort
	ip string
}

// podInfo is what the cache and the filters need of a pod, computed once per
// pod version rather than once per node and cycle.
type podInfo struct {
	pod        *v1.Pod
	req        resources
	nonZeroCPU int64
	nonZeroMem int64
	ports      []hostPort
	owner      types.UID
	// antiAffinity are the pod's required anti-affinity terms: they also
	// constrain pods scheduled after it (the symmetric check).
	antiAffinity []affinityTerm
}

func newPodInfo(pod *v1.Pod) *podInfo {
	pi := &podInfo{pod: pod}
	pi.req = resourcesFrom(resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{}))
	nz := resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{NonMissingContainerRequests: nonZeroDefaults})
	pi.nonZeroCPU = nz.Cpu().MilliValue()
	pi.nonZeroMem = nz.Memory().Value()
	for _, cs := range [][]v1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for i := range cs {
			for _, p := range cs[i].Ports {
				if p.HostPort <= 0 {
					continue
				}
				hp := hostPort{protoPort: protoPort{protocol: p.Protocol, port: p.HostPort}, ip: p.HostIP}
				if hp.protocol == "" {
					hp.protocol = v1.ProtocolTCP
				}
				if hp.ip == "" {
					hp.ip = "0.0.0.0"
				}
				pi.ports = append(pi.ports, hp)
			}
		}
	}
	if ref := metav1.GetControllerOf(pod); ref != nil {
		pi.owner = ref.UID
	}
	if a := pod.Spec.Affinity; a != nil && a.PodAntiAffinity != nil {
		pi.antiAffinity = newAffinityTerms(pod, a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution)
	}
	return pi
}

// affinityTerm is a parsed PodAffinityTerm. A namespaceSelector other than
// the empty one (all namespaces) is not supported: it would need the
// namespaces' labels, and matches only the listed namespaces here.
type affinityTerm struct {
	namespaces    map[string]bool
	allNamespaces bool
	selector      labels.Selector
	topologyKey   string
	weight        int64
}

func newAffinityTerms(pod *v1.Pod, terms []v1.PodAffinityTerm) []affinityTerm {
	out := make([]affinityTerm, 0, len(terms))
	for i := range terms {
		out = append(out, newAffinityTerm(pod, &terms[i], 0))
	}
	return out
}

func newWeightedAffinityTerms(pod *v1.Pod, terms []v1.WeightedPodAffinityTerm, sign int64) []affinityTerm {
	out := make([]affinityTerm, 0, len(terms))
	for i := range terms {
		out = append(out, newAffinityTerm(pod, &terms[i].PodAffinityTerm, sign*int64(terms[i].Weight)))
	}
	return out
}

func newAffinityTerm(pod *v1.Pod, t *v1.PodAffinityTerm, weight int64) affinityTerm {
	at := affinityTerm{topologyKey: t.TopologyKey, weight: weight, namespaces: map[string]bool{}}
	sel, err := metav1.LabelSelectorAsSelector(t.LabelSelector)
	if err != nil {
		// Validation rejects bad selectors; should one slip through, it
		// matches nothing rather than everything.
		sel = labels.Nothing()
	}
	at.selector = sel
	if t.NamespaceSelector != nil && len(t.NamespaceSelector.MatchLabels) == 0 && len(t.NamespaceSelector.MatchExpressions) == 0 {
		at.allNamespaces = true
	}
	for _, ns := range t.Namespaces {
		at.namespaces[ns] = true
	}
	if len(t.Namespaces) == 0 && t.NamespaceSelector == nil {
		at.namespaces[pod.Namespace] = true
	}
	return at
}

func (t *affinityTerm) matches(p *v1.Pod) bool {
	if !t.allNamespaces && !t.namespaces[p.Namespace] {
		return false
	}
	return t.selector.Matches(labels.Set(p.Labels))
}
