package envvars

import (
	"fmt"
	"math"
	"math/big"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/api/validate/content"
)

// fieldRefValue resolves a downward API fieldRef against the pod.
func (r *resolver) fieldRefValue(fs *corev1.ObjectFieldSelector) (string, error) {
	if v := fs.APIVersion; v != "" && v != "v1" {
		return "", fmt.Errorf("unsupported pod version: %s", v)
	}
	pod := r.pod
	if path, key, ok := splitSubscript(fs.FieldPath); ok {
		switch path {
		case "metadata.annotations":
			return subscriptValue(pod.Annotations, fs.FieldPath, key, strings.ToLower(key))
		case "metadata.labels":
			return subscriptValue(pod.Labels, fs.FieldPath, key, key)
		}
		return "", fmt.Errorf("field label does not support subscript: %s", fs.FieldPath)
	}
	switch fs.FieldPath {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "metadata.annotations":
		return formatMap(pod.Annotations), nil
	case "metadata.labels":
		return formatMap(pod.Labels), nil
	case "spec.nodeName", "spec.host": // spec.host: the old v1 name
		return pod.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.hostIP", "status.hostIPs":
		ips := r.hostIPs()
		if len(ips) == 0 {
			return "", fmt.Errorf("host IP unknown; known addresses: %v", ips)
		}
		if fs.FieldPath == "status.hostIP" {
			return ips[0], nil
		}
		return strings.Join(ips, ","), nil
	case "status.podIP":
		if ips := r.podIPs(); len(ips) > 0 {
			return ips[0], nil
		}
		return "", nil
	case "status.podIPs":
		return strings.Join(r.podIPs(), ","), nil
	case "spec.restartPolicy", "spec.schedulerName", "status.phase":
		// Known field labels, but not ones kubelet can put in a
		// variable.
		return "", fmt.Errorf("unsupported fieldPath: %s", fs.FieldPath)
	}
	return "", fmt.Errorf("field label not supported: %s", fs.FieldPath)
}

// splitSubscript splits "metadata.labels['key']" into its path and key.
func splitSubscript(fieldPath string) (path, key string, ok bool) {
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

func subscriptValue(m map[string]string, fieldPath, key, checked string) (string, error) {
	if errs := content.IsLabelKey(checked); len(errs) != 0 {
		return "", fmt.Errorf("invalid key subscript in %s: %s", fieldPath, strings.Join(errs, ";"))
	}
	return m[key], nil
}

// formatMap renders a whole label or annotation map as the downward API
// does: key="quoted value" lines in key order.
func formatMap(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(strconv.Quote(m[k]))
	}
	return b.String()
}

func (r *resolver) hostIPs() []string {
	if len(r.opts.HostIPs) > 0 {
		return r.opts.HostIPs
	}
	st := r.pod.Status
	ips := make([]string, 0, len(st.HostIPs))
	for _, ip := range st.HostIPs {
		ips = append(ips, ip.IP)
	}
	if len(ips) == 0 && st.HostIP != "" {
		ips = append(ips, st.HostIP)
	}
	return ips
}

// podIPs returns at most one pod IP of each family, the node's primary
// family (that of its first IP, IPv4 when unknown) first.
func (r *resolver) podIPs() []string {
	all := r.opts.PodIPs
	if len(all) == 0 {
		for _, ip := range r.pod.Status.PodIPs {
			all = append(all, ip.IP)
		}
		if len(all) == 0 && r.pod.Status.PodIP != "" {
			all = []string{r.pod.Status.PodIP}
		}
	}
	primaryV6 := false
	if hosts := r.hostIPs(); len(hosts) > 0 {
		primaryV6 = isIPv6(hosts[0])
	}
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
		var err error
		if c, defaulted, err = r.findContainer(fs.ContainerName); err != nil {
			return "", err
		}
	}
	divisor := fs.Divisor
	if divisor.IsZero() {
		divisor = resource.MustParse("1")
	}

	kind, name, _ := strings.Cut(fs.Resource, ".")
	rn := corev1.ResourceName(name)
	if downwardResource(rn) {
		switch kind {
		case "limits":
			limits := c.Resources.Limits
			if defaulted {
				limits = r.defaultLimits(limits)
			}
			q := limits[rn]
			return ceilRatio(&q, &divisor), nil
		case "requests":
			q := c.Resources.Requests[rn]
			return ceilRatio(&q, &divisor), nil
		}
	}
	return "", fmt.Errorf("unsupported container resource : %v", fs.Resource)
}

// downwardResource reports whether a resourceFieldRef may name rn.
func downwardResource(rn corev1.ResourceName) bool {
	switch rn {
	case corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourceEphemeralStorage:
		return true
	}
	return strings.HasPrefix(string(rn), corev1.ResourceHugePagesPrefix)
}

// findContainer finds a container of the pod by name. Only app containers
// get the node-allocatable stand-in limits, as in kubelet.
func (r *resolver) findContainer(name string) (*corev1.Container, bool, error) {
	for i := range r.pod.Spec.Containers {
		if r.pod.Spec.Containers[i].Name == name {
			return &r.pod.Spec.Containers[i], true, nil
		}
	}
	for i := range r.pod.Spec.InitContainers {
		if r.pod.Spec.InitContainers[i].Name == name {
			return &r.pod.Spec.InitContainers[i], false, nil
		}
	}
	return nil, false, fmt.Errorf("container %s not found", name)
}

// defaultLimits returns limits with each unset or zero cpu, memory and
// ephemeral-storage limit replaced by the node's allocatable amount, or by
// the pod-level limit (cpu and memory) where the pod sets one.
func (r *resolver) defaultLimits(limits corev1.ResourceList) corev1.ResourceList {
	out := limits.DeepCopy()
	if out == nil {
		out = corev1.ResourceList{}
	}
	var podLimits corev1.ResourceList
	if r.pod.Spec.Resources != nil {
		podLimits = r.pod.Spec.Resources.Limits
	}
	for _, rn := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourceEphemeralStorage} {
		if q, ok := out[rn]; ok && !q.IsZero() {
			continue
		}
		alloc, ok := r.opts.NodeAllocatable[rn]
		if !ok {
			continue
		}
		if pl, ok := podLimits[rn]; ok && !pl.IsZero() && rn != corev1.ResourceEphemeralStorage {
			alloc = pl
		}
		out[rn] = alloc.DeepCopy()
	}
	return out
}

// ceilRatio returns ⌈q/d⌉ as a decimal integer, computed exactly: 0 when
// either is zero or negative, math.MaxInt64 when it does not fit.
func ceilRatio(q, d *resource.Quantity) string {
	if q.Sign() <= 0 || d.Sign() <= 0 {
		return "0"
	}
	qd, dd := q.AsDec(), d.AsDec()
	num := new(big.Int).Set(qd.UnscaledBig())
	den := new(big.Int).Set(dd.UnscaledBig())
	qScale, dScale := int64(qd.Scale()), int64(dd.Scale())

	// Compare orders of magnitude before scaling, so that a quantity
	// like 1e100000 is not blown up into that many digits.
	switch diff := magnitude(num, qScale) - magnitude(den, dScale); {
	case diff > 21:
		return strconv.FormatInt(math.MaxInt64, 10)
	case diff < -3:
		return "1"
	}
	ten := big.NewInt(10)
	if s := dScale - qScale; s > 0 {
		num.Mul(num, new(big.Int).Exp(ten, big.NewInt(s), nil))
	} else if s < 0 {
		den.Mul(den, new(big.Int).Exp(ten, big.NewInt(-s), nil))
	}
	res, rem := new(big.Int).QuoRem(num, den, new(big.Int))
	if rem.Sign() != 0 {
		res.Add(res, big.NewInt(1))
	}
	if !res.IsInt64() {
		return strconv.FormatInt(math.MaxInt64, 10)
	}
	return res.String()
}

// magnitude estimates log10 of unscaled·10^-scale, to within one.
func magnitude(unscaled *big.Int, scale int64) int64 {
	return int64(float64(unscaled.BitLen())*math.Log10(2)) - scale
}
