package fieldpath

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/validate/content"
)

// IPs are the addresses the status.hostIP(s) and status.podIP(s) fields
// resolve to, primary first. They are a parameter because where they come
// from differs: a container's environment can take them from the node and
// the sandbox before the pod's status records them.
type IPs struct {
	Host []string
	Pod  []string
}

// StatusIPs returns the addresses recorded in the pod's status: the
// hostIPs and podIPs lists, or the single hostIP and podIP of a status
// written before those lists existed.
func StatusIPs(pod *corev1.Pod) IPs {
	st := &pod.Status
	ips := IPs{}
	for _, ip := range st.HostIPs {
		ips.Host = append(ips.Host, ip.IP)
	}
	if len(ips.Host) == 0 && st.HostIP != "" {
		ips.Host = []string{st.HostIP}
	}
	for _, ip := range st.PodIPs {
		ips.Pod = append(ips.Pod, ip.IP)
	}
	if len(ips.Pod) == 0 && st.PodIP != "" {
		ips.Pod = []string{st.PodIP}
	}
	return ips
}

// FieldValue returns the value of the pod field fs selects: a metadata
// field, a single label or annotation ("metadata.labels['key']"), the node
// name, the service account, or an address from ips (the first one for
// status.hostIP and status.podIP, all of them comma-separated for the
// plural fields; empty when there are none).
func FieldValue(pod *corev1.Pod, fs *corev1.ObjectFieldSelector, ips IPs) (string, error) {
	if v := fs.APIVersion; v != "" && v != "v1" {
		return "", fmt.Errorf("unsupported pod version: %s", v)
	}
	if path, key, ok := SplitSubscript(fs.FieldPath); ok {
		return subscriptValue(pod, fs.FieldPath, path, key)
	}
	switch fs.FieldPath {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "metadata.labels":
		return FormatMap(pod.Labels), nil
	case "metadata.annotations":
		return FormatMap(pod.Annotations), nil
	case "spec.nodeName":
		return pod.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.hostIP":
		return first(ips.Host), nil
	case "status.hostIPs":
		return strings.Join(ips.Host, ","), nil
	case "status.podIP":
		return first(ips.Pod), nil
	case "status.podIPs":
		return strings.Join(ips.Pod, ","), nil
	}
	return "", fmt.Errorf("unsupported fieldPath: %v", fs.FieldPath)
}

// subscriptValue is the value of one label or annotation. The key must be
// a valid label key, so that a typo is an error rather than an empty
// value; annotation keys are checked in lower case, as the API server
// accepts them in any case.
func subscriptValue(pod *corev1.Pod, fieldPath, path, key string) (string, error) {
	var m map[string]string
	checked := key
	switch path {
	case "metadata.labels":
		m = pod.Labels
	case "metadata.annotations":
		m, checked = pod.Annotations, strings.ToLower(key)
	default:
		return "", fmt.Errorf("fieldPath %q does not support subscript", fieldPath)
	}
	if errs := content.IsLabelKey(checked); len(errs) != 0 {
		return "", fmt.Errorf("invalid key subscript in %s: %s", fieldPath, strings.Join(errs, ";"))
	}
	return m[key], nil
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

// SplitSubscript splits "metadata.labels['key']" into its path and key;
// ok is false for a path without a subscript.
func SplitSubscript(fieldPath string) (path, key string, ok bool) {
	rest, found := strings.CutSuffix(fieldPath, "']")
	if !found {
		return "", "", false
	}
	path, key, found = strings.Cut(rest, "['")
	if !found || path == "" {
		return "", "", false
	}
	return path, key, true
}

// FormatMap renders a whole label or annotation map as the downward API
// does: one key="value" line per key, in key order, the value quoted with
// Go's escapes so that any value fits on one line.
func FormatMap(m map[string]string) string {
	keys := slices.Sorted(maps.Keys(m))
	lines := make([]string, len(keys))
	for i, k := range keys {
		lines[i] = k + "=" + strconv.Quote(m[k])
	}
	return strings.Join(lines, "\n")
}
