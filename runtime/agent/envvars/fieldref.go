package envvars

import (
	"fmt"
	"maps"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/wasmkube/wasmkube/runtime/agent/fieldpath"
)

// fieldRefValue resolves a downward API fieldRef against the pod.
func (r *resolver) fieldRefValue(fs *corev1.ObjectFieldSelector) (string, error) {
	path, err := envFieldLabel(fs.APIVersion, fs.FieldPath)
	if err != nil {
		return "", err
	}
	hosts := r.hostIPs()
	if (path == "status.hostIP" || path == "status.hostIPs") && len(hosts) == 0 {
		// Kubelet refuses to start a container whose variable would
		// hold no host address, rather than give it an empty one.
		return "", fmt.Errorf("host IP unknown; known addresses: %v", hosts)
	}
	sel := *fs
	sel.FieldPath = path
	return fieldpath.FieldValue(r.pod, &sel, fieldpath.IPs{Host: hosts, Pod: r.podIPs(hosts)})
}

// envFieldLabel checks a fieldRef's label as the API's conversion of v1
// field labels does before kubelet resolves it, and returns the label to
// resolve. So an unknown label ("field label not supported") fails
// differently from a known one that no variable can hold (spec.restartPolicy,
// spec.schedulerName and status.phase, which fieldpath does not resolve),
// and the old name spec.host still works.
func envFieldLabel(version, label string) (string, error) {
	if version != "" && version != "v1" {
		return "", fmt.Errorf("unsupported pod version: %s", version)
	}
	if path, _, ok := fieldpath.SplitSubscript(label); ok {
		if path == "metadata.annotations" || path == "metadata.labels" {
			return label, nil
		}
		return "", fmt.Errorf("field label does not support subscript: %s", label)
	}
	switch label {
	case "spec.host":
		return "spec.nodeName", nil
	case "metadata.annotations", "metadata.labels", "metadata.name", "metadata.namespace", "metadata.uid",
		"spec.nodeName", "spec.restartPolicy", "spec.serviceAccountName", "spec.schedulerName",
		"status.phase", "status.hostIP", "status.hostIPs", "status.podIP", "status.podIPs":
		return label, nil
	}
	return "", fmt.Errorf("field label not supported: %s", label)
}

// hostIPs returns the node's addresses as Options gives them, else those
// of the pod's status.
func (r *resolver) hostIPs() []string {
	if len(r.opts.HostIPs) > 0 {
		return r.opts.HostIPs
	}
	return fieldpath.StatusIPs(r.pod).Host
}

// podIPs returns at most one pod IP of each family, the node's primary
// family (that of hosts[0], IPv4 when unknown) first, as kubelet orders
// them for the sandbox.
func (r *resolver) podIPs(hosts []string) []string {
	all := r.opts.PodIPs
	if len(all) == 0 {
		all = fieldpath.StatusIPs(r.pod).Pod
	}
	primaryV6 := len(hosts) > 0 && isIPv6(hosts[0])
	var out []string
	for _, wantV6 := range []bool{primaryV6, !primaryV6} {
		for _, ip := range all {
			if _, err := netip.ParseAddr(ip); err == nil && isIPv6(ip) == wantV6 {
				out = append(out, ip)
				break
			}
		}
	}
	return out
}

func isIPv6(ip string) bool {
	a, err := netip.ParseAddr(ip)
	return err == nil && a.Is6() && !a.Is4In6()
}

// resourceFieldRefValue resolves a resourceFieldRef: a limit or request of
// this container, or of the one it names, in units of the divisor rounded
// up.
func (r *resolver) resourceFieldRefValue(fs *corev1.ResourceFieldSelector) (string, error) {
	c, defaulted := r.container, true
	if fs.ContainerName != "" {
		found, init, err := fieldpath.FindContainer(r.pod, fs.ContainerName)
		if err != nil {
			return "", err
		}
		// Only app containers get the stand-in limits, as in kubelet.
		c, defaulted = found, !init
	}
	if !defaulted {
		return fieldpath.ResourceValue(fs, c)
	}
	return fieldpath.ResourceValue(fs, c, r.limitDefaults()...)
}

// limitDefaults are the lists whose amounts stand in for a container's
// unset limits: the node's allocatable amounts, with the pod-level limit in
// place of one where the pod sets it. Kubelet folds the pod-level limits
// into the allocatable list, so one counts only for a resource the node
// reports.
func (r *resolver) limitDefaults() []corev1.ResourceList {
	alloc := r.opts.NodeAllocatable
	podLimits := fieldpath.PodLimits(r.pod)
	maps.DeleteFunc(podLimits, func(rn corev1.ResourceName, _ resource.Quantity) bool {
		_, ok := alloc[rn]
		return !ok
	})
	return []corev1.ResourceList{podLimits, alloc}
}
