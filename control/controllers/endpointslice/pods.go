package endpointslice

import (
	"fmt"
	"net/netip"
	"sort"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/wasmkube/wasmkube/control/controllers/tombstone"
)

// IsPodReady reports whether the pod's Ready condition is True.
func IsPodReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// ShouldPodBeInEndpoints reports whether a pod belongs in endpoints at all:
// it must have an IP and not have finished. Terminating pods are kept only
// when includeTerminating is set (EndpointSlices keep them, with the
// terminating condition, so load balancers can drain them).
func ShouldPodBeInEndpoints(pod *corev1.Pod, includeTerminating bool) bool {
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return false
	}
	if pod.Status.PodIP == "" && len(pod.Status.PodIPs) == 0 {
		return false
	}
	if !includeTerminating && pod.DeletionTimestamp != nil {
		return false
	}
	return true
}

// ShouldSetHostname reports whether the endpoint of pod for svc carries the
// pod's hostname: only pods that name the Service as their subdomain get a
// DNS record <hostname>.<service>.
func ShouldSetHostname(pod *corev1.Pod, svc *corev1.Service) bool {
	return pod.Spec.Hostname != "" && pod.Spec.Subdomain == svc.Name && svc.Namespace == pod.Namespace
}

// FindPort resolves a service port's targetPort on a pod: a number is used
// as is, a name is looked up among the pod's container ports (and those of
// its restartable init containers, which are sidecars) with the same
// protocol.
func FindPort(pod *corev1.Pod, sp *corev1.ServicePort) (int32, error) {
	target := sp.TargetPort
	switch target.Type {
	case intstr.Int:
		if target.IntVal == 0 {
			// An unset targetPort means the service port itself.
			return sp.Port, nil
		}
		return target.IntVal, nil
	case intstr.String:
		if p, ok := namedPort(pod.Spec.Containers, target.StrVal, sp.Protocol); ok {
			return p, nil
		}
		var sidecars []corev1.Container
		for _, c := range pod.Spec.InitContainers {
			if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
				sidecars = append(sidecars, c)
			}
		}
		if p, ok := namedPort(sidecars, target.StrVal, sp.Protocol); ok {
			return p, nil
		}
	}
	return 0, fmt.Errorf("no container port named %q (%s) in pod %s/%s", target.StrVal, sp.Protocol, pod.Namespace, pod.Name)
}

func namedPort(containers []corev1.Container, name string, proto corev1.Protocol) (int32, bool) {
	for _, c := range containers {
		for _, p := range c.Ports {
			if p.Name == name && protocolOrTCP(p.Protocol) == protocolOrTCP(proto) {
				return p.ContainerPort, true
			}
		}
	}
	return 0, false
}

func protocolOrTCP(p corev1.Protocol) corev1.Protocol {
	if p == "" {
		return corev1.ProtocolTCP
	}
	return p
}

// EndpointPorts resolves every port of svc on pod, skipping ports the pod
// does not expose, as upstream does; the result is sorted so that it can
// serve as a grouping key.
func EndpointPorts(svc *corev1.Service, pod *corev1.Pod) []discoveryv1.EndpointPort {
	out := []discoveryv1.EndpointPort{}
	for i := range svc.Spec.Ports {
		sp := &svc.Spec.Ports[i]
		num, err := FindPort(pod, sp)
		if err != nil {
			continue
		}
		name, proto := sp.Name, protocolOrTCP(sp.Protocol)
		out = append(out, discoveryv1.EndpointPort{
			Name: &name, Port: &num, Protocol: &proto, AppProtocol: sp.AppProtocol,
		})
	}
	sortPorts(out)
	return out
}

func sortPorts(ports []discoveryv1.EndpointPort) {
	sort.SliceStable(ports, func(i, j int) bool {
		a, b := ports[i], ports[j]
		if deref(a.Name) != deref(b.Name) {
			return deref(a.Name) < deref(b.Name)
		}
		if deref(a.Protocol) != deref(b.Protocol) {
			return deref(a.Protocol) < deref(b.Protocol)
		}
		return deref(a.Port) < deref(b.Port)
	})
}

// PortsKey identifies a resolved port list; endpoints with equal keys can
// share a slice (or an Endpoints subset).
func PortsKey(ports []discoveryv1.EndpointPort) string {
	key := ""
	for _, p := range ports {
		key += fmt.Sprintf("%s/%s/%d/%s;", deref(p.Name), deref(p.Protocol), deref(p.Port), deref(p.AppProtocol))
	}
	return key
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// PodAddresses returns the pod's IPs of one family, normalised.
func PodAddresses(pod *corev1.Pod, addressType discoveryv1.AddressType) []string {
	ips := []string{}
	seen := map[string]bool{}
	add := func(s string) {
		addr, err := netip.ParseAddr(s)
		if err != nil {
			return
		}
		addr = addr.Unmap()
		if addr.Is4() != (addressType == discoveryv1.AddressTypeIPv4) {
			return
		}
		if !seen[addr.String()] {
			seen[addr.String()] = true
			ips = append(ips, addr.String())
		}
	}
	for _, ip := range pod.Status.PodIPs {
		add(ip.IP)
	}
	if len(pod.Status.PodIPs) == 0 {
		add(pod.Status.PodIP)
	}
	return ips
}

// ServicesForPod returns the keys of the Services in the pod's namespace
// whose selector selects the pod.
func ServicesForPod(services corelisters.ServiceLister, pod *corev1.Pod) []string {
	list, err := services.Services(pod.Namespace).List(labels.Everything())
	if err != nil {
		return nil
	}
	var keys []string
	for _, svc := range list {
		if svc.Spec.Selector == nil {
			continue
		}
		if labels.SelectorFromValidatedSet(svc.Spec.Selector).Matches(labels.Set(pod.Labels)) {
			keys = append(keys, svc.Namespace+"/"+svc.Name)
		}
	}
	return keys
}

// PodChanged reports whether an update can change any endpoint derived from
// the pod, so that status-only noise (container restarts counted, probe
// timestamps) does not resync every Service.
func PodChanged(old, cur *corev1.Pod) bool {
	if old.ResourceVersion == cur.ResourceVersion {
		return false
	}
	if !labels.Equals(old.Labels, cur.Labels) ||
		old.Status.PodIP != cur.Status.PodIP || len(old.Status.PodIPs) != len(cur.Status.PodIPs) ||
		IsPodReady(old) != IsPodReady(cur) ||
		(old.DeletionTimestamp == nil) != (cur.DeletionTimestamp == nil) ||
		old.Status.Phase != cur.Status.Phase ||
		old.Spec.NodeName != cur.Spec.NodeName ||
		old.Spec.Hostname != cur.Spec.Hostname || old.Spec.Subdomain != cur.Spec.Subdomain {
		return true
	}
	for i := range old.Status.PodIPs {
		if old.Status.PodIPs[i] != cur.Status.PodIPs[i] {
			return true
		}
	}
	return false
}

// PodHandler passes to enqueue the keys of the Services that select a pod
// whenever the pod can change their endpoints. A relabelled pod also wakes
// the Services that selected it before, which must drop it.
func PodHandler(services corelisters.ServiceLister, enqueue func(key string)) cache.ResourceEventHandlerFuncs {
	event := func(obj any) {
		pod, ok := tombstone.Unwrap[*corev1.Pod](obj)
		if !ok {
			return
		}
		for _, key := range ServicesForPod(services, pod) {
			enqueue(key)
		}
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc: event,
		UpdateFunc: func(oldObj, newObj any) {
			old, cur := oldObj.(*corev1.Pod), newObj.(*corev1.Pod)
			if !PodChanged(old, cur) {
				return
			}
			if !labels.Equals(old.Labels, cur.Labels) {
				event(old)
			}
			event(cur)
		},
		DeleteFunc: event,
	}
}

// ServiceAddressTypes lists the address families a Service's endpoints are
// published in: its ipFamilies, else the family of its cluster IP, else
// (a headless Service written before families existed) both.
func ServiceAddressTypes(svc *corev1.Service) []discoveryv1.AddressType {
	var out []discoveryv1.AddressType
	for _, f := range svc.Spec.IPFamilies {
		switch f {
		case corev1.IPv4Protocol:
			out = append(out, discoveryv1.AddressTypeIPv4)
		case corev1.IPv6Protocol:
			out = append(out, discoveryv1.AddressTypeIPv6)
		}
	}
	if len(out) > 0 {
		return out
	}
	if ip, err := netip.ParseAddr(svc.Spec.ClusterIP); err == nil {
		if ip.Is4() {
			return []discoveryv1.AddressType{discoveryv1.AddressTypeIPv4}
		}
		return []discoveryv1.AddressType{discoveryv1.AddressTypeIPv6}
	}
	return []discoveryv1.AddressType{discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv6}
}
