package volumes

import (
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
)

// downwardPayload builds the files of a downwardAPI volume (or projection)
// as kubelet's CollectData does: one file per item, holding a field of the
// pod or a resource of one of its containers.
func (m *Manager) downwardPayload(pod *corev1.Pod, items []corev1.DownwardAPIVolumeFile, defaultMode *int32) (payload, error) {
	p := payload{}
	var errs []error
	for _, it := range items {
		fp := fileProjection{mode: fileMode(defaultMode)}
		if it.Mode != nil {
			fp.mode = fileMode(it.Mode)
		}
		var v string
		var err error
		switch {
		case it.FieldRef != nil:
			v, err = podFieldValue(pod, it.FieldRef)
		case it.ResourceFieldRef != nil:
			v, err = m.resourceFieldValue(pod, it.ResourceFieldRef)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", it.Path, err))
			continue
		}
		fp.data = []byte(v)
		p[filepath.Clean(it.Path)] = fp
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return p, nil
}

// podFieldValue is the value of a fieldRef. Besides the metadata fields
// kubelet allows in volumes, the node name, service account and IPs are
// offered too, as they are to environment variables; the IPs are those of
// the pod's status, so they appear once the status has them.
func podFieldValue(pod *corev1.Pod, fs *corev1.ObjectFieldSelector) (string, error) {
	if v := fs.APIVersion; v != "" && v != "v1" {
		return "", fmt.Errorf("unsupported pod version: %s", v)
	}
	if path, key, ok := splitSubscript(fs.FieldPath); ok {
		var m map[string]string
		checked := key
		switch path {
		case "metadata.labels":
			m = pod.Labels
		case "metadata.annotations":
			m, checked = pod.Annotations, strings.ToLower(key)
		default:
			return "", fmt.Errorf("fieldPath %q does not support subscript", fs.FieldPath)
		}
		if errs := validation.IsQualifiedName(checked); len(errs) != 0 {
			return "", fmt.Errorf("invalid key subscript in %s: %s", fs.FieldPath, strings.Join(errs, ";"))
		}
		return m[key], nil
	}
	st := &pod.Status
	switch fs.FieldPath {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "metadata.labels":
		return formatMap(pod.Labels), nil
	case "metadata.annotations":
		return formatMap(pod.Annotations), nil
	case "spec.nodeName":
		return pod.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.hostIP":
		return st.HostIP, nil
	case "status.hostIPs":
		return joinIPs(st.HostIPs, func(ip corev1.HostIP) string { return ip.IP }, st.HostIP), nil
	case "status.podIP":
		return st.PodIP, nil
	case "status.podIPs":
		return joinIPs(st.PodIPs, func(ip corev1.PodIP) string { return ip.IP }, st.PodIP), nil
	}
	return "", fmt.Errorf("unsupported fieldPath: %v", fs.FieldPath)
}

// joinIPs joins the addresses of a status list with commas, or gives the
// single address when the list is empty.
func joinIPs[T any](ips []T, addr func(T) string, single string) string {
	if len(ips) == 0 {
		return single
	}
	out := make([]string, len(ips))
	for i, ip := range ips {
		out[i] = addr(ip)
	}
	return strings.Join(out, ",")
}

// splitSubscript splits "metadata.labels['key']" into its path and key.
func splitSubscript(fieldPath string) (path, key string, ok bool) {
	open := strings.Index(fieldPath, "['")
	if open <= 0 || !strings.HasSuffix(fieldPath, "']") || len(fieldPath) < open+4 {
		return "", "", false
	}
	return fieldPath[:open], fieldPath[open+2 : len(fieldPath)-2], true
}

// formatMap renders labels or annotations as the downward API does: one
// key="value" line per key, in key order, the value quoted with Go's
// escapes.
func formatMap(m map[string]string) string {
	keys := slices.Sorted(maps.Keys(m))
	lines := make([]string, len(keys))
	for i, k := range keys {
		lines[i] = k + "=" + strconv.Quote(m[k])
	}
	return strings.Join(lines, "\n")
}

// resourceFieldValue is the value of a resourceFieldRef: a limit or
// request of a container of the pod in units of the divisor, rounded up.
// Unset cpu, memory and ephemeral-storage limits are the pod-level limits
// or else the node's allocatable amounts, as in kubelet.
func (m *Manager) resourceFieldValue(pod *corev1.Pod, fs *corev1.ResourceFieldSelector) (string, error) {
	c := findContainer(pod, fs.ContainerName)
	if c == nil {
		return "", fmt.Errorf("container %s not found", fs.ContainerName)
	}
	divisor := fs.Divisor
	if divisor.IsZero() {
		divisor = resource.MustParse("1")
	}
	unsupported := fmt.Errorf("unsupported container resource : %v", fs.Resource)
	kind, name, _ := strings.Cut(fs.Resource, ".")
	var list corev1.ResourceList
	switch kind {
	case "limits":
		list = c.Resources.Limits
		if pod.Spec.Resources != nil {
			list = mergeLimits(list, pod.Spec.Resources.Limits, corev1.ResourceCPU, corev1.ResourceMemory)
		}
		list = mergeLimits(list, m.allocatable, corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourceEphemeralStorage)
	case "requests":
		list = c.Resources.Requests
	default:
		return "", unsupported
	}
	rn := corev1.ResourceName(name)
	q := list[rn]
	switch {
	case rn == corev1.ResourceCPU:
		return ceilDiv(q.MilliValue(), divisor.MilliValue(), fs.Resource)
	case rn == corev1.ResourceMemory, rn == corev1.ResourceEphemeralStorage,
		strings.HasPrefix(name, corev1.ResourceHugePagesPrefix):
		return ceilDiv(q.Value(), divisor.Value(), fs.Resource)
	}
	return "", unsupported
}

// findContainer finds a container or init container of the pod by name.
func findContainer(pod *corev1.Pod, name string) *corev1.Container {
	for _, list := range [][]corev1.Container{pod.Spec.Containers, pod.Spec.InitContainers} {
		for i := range list {
			if list[i].Name == name {
				return &list[i]
			}
		}
	}
	return nil
}

// mergeLimits returns limits with each of names that is unset or zero
// taken from defaults, where defaults has it.
func mergeLimits(limits, defaults corev1.ResourceList, names ...corev1.ResourceName) corev1.ResourceList {
	out := limits.DeepCopy()
	if out == nil {
		out = corev1.ResourceList{}
	}
	for _, rn := range names {
		if q, ok := out[rn]; ok && !q.IsZero() {
			continue
		}
		if d, ok := defaults[rn]; ok && !d.IsZero() {
			out[rn] = d.DeepCopy()
		}
	}
	return out
}

// ceilDiv is ⌈n/d⌉ in decimal, as kubelet rounds resource values.
func ceilDiv(n, d int64, res string) (string, error) {
	if d <= 0 {
		return "", fmt.Errorf("invalid divisor for %s", res)
	}
	q := n / d
	if n%d > 0 {
		q++
	}
	return strconv.FormatInt(q, 10), nil
}
