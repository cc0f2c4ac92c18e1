package endpointslice

import (
	"sort"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// MaxEndpointsPerSlice is upstream's default --max-endpoints-per-slice.
const MaxEndpointsPerSlice = 100

// group is the desired endpoints sharing one resolved port list.
type group struct {
	ports []discoveryv1.EndpointPort
	eps   map[string]discoveryv1.Endpoint
}

// plan is the writes that bring one address type's slices to the desired
// state.
type plan struct {
	create, update, del []*discoveryv1.EndpointSlice
}

// podToEndpoint is the endpoint of pod for svc; the conditions follow
// upstream so that consumers can tell "not ready" from "draining".
func podToEndpoint(pod *corev1.Pod, svc *corev1.Service, addrs []string, zone string) discoveryv1.Endpoint {
	serving := IsPodReady(pod)
	terminating := pod.DeletionTimestamp != nil
	// publishNotReadyAddresses exists for peers that must find each other
	// before they are ready (StatefulSet bootstrapping), so it overrides.
	ready := svc.Spec.PublishNotReadyAddresses || (serving && !terminating)
	ep := discoveryv1.Endpoint{
		Addresses:  addrs,
		Conditions: discoveryv1.EndpointConditions{Ready: &ready, Serving: &serving, Terminating: &terminating},
		TargetRef: &corev1.ObjectReference{
			Kind: "Pod", Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID,
		},
	}
	if pod.Spec.NodeName != "" {
		ep.NodeName = ptrTo(pod.Spec.NodeName)
	}
	if zone != "" {
		ep.Zone = ptrTo(zone)
	}
	if ShouldSetHostname(pod, svc) {
		ep.Hostname = ptrTo(pod.Spec.Hostname)
	}
	return ep
}

func ptrTo[T any](v T) *T { return &v }

// desiredGroups computes the endpoints of one address type, grouped by
// resolved ports.
func desiredGroups(svc *corev1.Service, pods []*corev1.Pod, zoneOf func(string) string, at discoveryv1.AddressType) map[string]*group {
	groups := map[string]*group{}
	for _, pod := range pods {
		if !ShouldPodBeInEndpoints(pod, true) {
			continue
		}
		addrs := PodAddresses(pod, at)
		if len(addrs) == 0 {
			continue
		}
		ports := EndpointPorts(svc, pod)
		key := PortsKey(ports)
		g := groups[key]
		if g == nil {
			g = &group{ports: ports, eps: map[string]discoveryv1.Endpoint{}}
			groups[key] = g
		}
		ep := podToEndpoint(pod, svc, addrs, zoneOf(pod.Spec.NodeName))
		g.eps[endpointKey(ep)] = ep
	}
	return groups
}

func endpointKey(ep discoveryv1.Endpoint) string {
	if ep.TargetRef != nil && ep.TargetRef.UID != "" {
		return string(ep.TargetRef.UID)
	}
	if len(ep.Addresses) > 0 {
		return ep.Addresses[0]
	}
	return ""
}

func sortEndpoints(eps []discoveryv1.Endpoint) {
	sort.Slice(eps, func(i, j int) bool {
		a, b := eps[i], eps[j]
		if len(a.Addresses) > 0 && len(b.Addresses) > 0 && a.Addresses[0] != b.Addresses[0] {
			return a.Addresses[0] < b.Addresses[0]
		}
		return endpointKey(a) < endpointKey(b)
	})
}

// sliceLabels are the Service's labels plus the reserved ones, as upstream:
// consumers select slices by service name, and the managed-by label keeps
// the controller from touching slices other writers own.
func sliceLabels(svc *corev1.Service) map[string]string {
	out := map[string]string{}
	for k, v := range svc.Labels {
		if k == discoveryv1.LabelServiceName || k == discoveryv1.LabelManagedBy || k == corev1.IsHeadlessService {
			continue
		}
		out[k] = v
	}
	if svc.Spec.ClusterIP == corev1.ClusterIPNone || svc.Spec.ClusterIP == "" {
		out[corev1.IsHeadlessService] = ""
	}
	out[discoveryv1.LabelServiceName] = svc.Name
	out[discoveryv1.LabelManagedBy] = ControllerName
	return out
}

func ownerRefs(svc *corev1.Service) []metav1.OwnerReference {
	return []metav1.OwnerReference{*metav1.NewControllerRef(svc, corev1.SchemeGroupVersion.WithKind("Service"))}
}

func newSlice(svc *corev1.Service, at discoveryv1.AddressType) *discoveryv1.EndpointSlice {
	prefix := svc.Name + "-"
	if len(validation.NameIsDNSSubdomain(prefix, true)) != 0 {
		prefix = svc.Name
	}
	return &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: prefix, Namespace: svc.Namespace,
			Labels: sliceLabels(svc), OwnerReferences: ownerRefs(svc),
		},
		AddressType: at,
		Ports:       []discoveryv1.EndpointPort{},
		Endpoints:   []discoveryv1.Endpoint{},
	}
}

// slot is one slice being planned: orig is what the cache holds (nil for a
// slice to create), cur the content it will have.
type slot struct {
	orig *discoveryv1.EndpointSlice
	cur  *discoveryv1.EndpointSlice
	key  string // ports key of cur
	// touched marks slices that are written anyway, which are the cheapest
	// place for new endpoints.
	touched bool
}

// reconcile plans the writes for one address type. existing are the
// Service's own slices of that type.
func reconcile(svc *corev1.Service, at discoveryv1.AddressType, groups map[string]*group, existing []*discoveryv1.EndpointSlice) plan {
	placed := map[string]bool{} // group key + endpoint key
	var live, spare []*slot
	for _, s := range existing {
		ports := append([]discoveryv1.EndpointPort(nil), s.Ports...)
		sortPorts(ports)
		sl := &slot{orig: s, cur: s.DeepCopy(), key: PortsKey(ports)}
		g := groups[sl.key]
		var eps []discoveryv1.Endpoint
		if g != nil {
			for _, ep := range s.Endpoints {
				k := endpointKey(ep)
				want, ok := g.eps[k]
				if !ok || placed[sl.key+"|"+k] || len(eps) >= MaxEndpointsPerSlice {
					continue
				}
				placed[sl.key+"|"+k] = true
				eps = append(eps, want)
			}
		}
		sl.cur.Endpoints = eps
		if len(eps) == 0 {
			spare = append(spare, sl)
			continue
		}
		sl.touched = !apiequality.Semantic.DeepEqual(eps, s.Endpoints)
		live = append(live, sl)
	}

	// takeSlot returns a slice for a new chunk: a spare existing slice if
	// there is one (an update instead of a create and a delete), else a
	// new one.
	takeSlot := func() *slot {
		if len(spare) > 0 {
			sl := spare[0]
			spare = spare[1:]
			sl.touched = true
			return sl
		}
		return &slot{cur: newSlice(svc, at), touched: true}
	}

	keys := make([]string, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, gk := range keys {
		g := groups[gk]
		var remaining []discoveryv1.Endpoint
		for k, ep := range g.eps {
			if !placed[gk+"|"+k] {
				remaining = append(remaining, ep)
			}
		}
		sortEndpoints(remaining)
		// First into slices of this group that are written anyway.
		for _, sl := range live {
			if len(remaining) == 0 {
				break
			}
			if sl.key != gk || !sl.touched {
				continue
			}
			n := min(MaxEndpointsPerSlice-len(sl.cur.Endpoints), len(remaining))
			sl.cur.Endpoints = append(sl.cur.Endpoints, remaining[:n]...)
			remaining = remaining[n:]
		}
		for len(remaining) > 0 {
			n := min(MaxEndpointsPerSlice, len(remaining))
			if n < MaxEndpointsPerSlice {
				// A last partial chunk goes into the untouched slice it
				// fills best, if any: one update instead of a create.
				if sl := sliceToFill(live, gk, n); sl != nil {
					sl.cur.Endpoints = append(sl.cur.Endpoints, remaining...)
					sl.touched = true
					break
				}
			}
			sl := takeSlot()
			sl.key = gk
			sl.cur.Ports = append([]discoveryv1.EndpointPort{}, g.ports...)
			sl.cur.Endpoints = append([]discoveryv1.Endpoint(nil), remaining[:n]...)
			live = append(live, sl)
			remaining = remaining[n:]
		}
	}

	// With no endpoints at all, one empty slice stays (upstream's
	// placeholder), so that consumers can tell "no endpoints" from "not
	// processed yet".
	if len(live) == 0 {
		sl := takeSlot()
		sl.key = ""
		sl.cur.Ports = []discoveryv1.EndpointPort{}
		sl.cur.Endpoints = []discoveryv1.Endpoint{}
		live = append(live, sl)
	}

	var p plan
	for _, sl := range live {
		sortEndpoints(sl.cur.Endpoints)
		sl.cur.Labels = sliceLabels(svc)
		sl.cur.OwnerReferences = ownerRefs(svc)
		sl.cur.AddressType = at
		switch {
		case sl.orig == nil:
			p.create = append(p.create, sl.cur)
		case !sliceEqual(sl.orig, sl.cur):
			p.update = append(p.update, sl.cur)
		}
	}
	for _, sl := range spare {
		p.del = append(p.del, sl.orig)
	}
	return p
}

// sliceToFill picks the untouched slice of a group that n more endpoints
// fill closest to the limit.
func sliceToFill(live []*slot, gk string, n int) *slot {
	var best *slot
	bestGap := MaxEndpointsPerSlice
	for _, sl := range live {
		if sl.key != gk || sl.touched {
			continue
		}
		gap := MaxEndpointsPerSlice - len(sl.cur.Endpoints) - n
		if gap >= 0 && gap < bestGap {
			best, bestGap = sl, gap
		}
	}
	return best
}

func sliceEqual(a, b *discoveryv1.EndpointSlice) bool {
	ae, be := append([]discoveryv1.Endpoint(nil), a.Endpoints...), append([]discoveryv1.Endpoint(nil), b.Endpoints...)
	sortEndpoints(ae)
	sortEndpoints(be)
	ap, bp := append([]discoveryv1.EndpointPort(nil), a.Ports...), append([]discoveryv1.EndpointPort(nil), b.Ports...)
	sortPorts(ap)
	sortPorts(bp)
	return a.AddressType == b.AddressType &&
		apiequality.Semantic.DeepEqual(ae, be) &&
		apiequality.Semantic.DeepEqual(ap, bp) &&
		apiequality.Semantic.DeepEqual(a.Labels, b.Labels) &&
		apiequality.Semantic.DeepEqual(a.OwnerReferences, b.OwnerReferences)
}
