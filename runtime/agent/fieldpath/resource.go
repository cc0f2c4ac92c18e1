package fieldpath

import (
	"fmt"
	"math"
	"math/big"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// defaultedLimits are the limits kubelet fills in for a resourceFieldRef
// when a container leaves them unset; other resources read as zero.
var defaultedLimits = []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourceEphemeralStorage}

// ResourceValue returns the value of the resource fs names ("limits.cpu",
// "requests.memory", ...) for container c, in units of the divisor (1 when
// unset) rounded up. A cpu, memory or ephemeral-storage limit that c leaves
// unset or zero is taken from the first of defaults that has a non-zero
// amount of it; requests are never defaulted. fs.ContainerName is not
// looked at: the caller has chosen c (see FindContainer).
func ResourceValue(fs *corev1.ResourceFieldSelector, c *corev1.Container, defaults ...corev1.ResourceList) (string, error) {
	kind, name, _ := strings.Cut(fs.Resource, ".")
	rn := corev1.ResourceName(name)
	if !downwardResource(rn) {
		return "", fmt.Errorf("unsupported container resource : %v", fs.Resource)
	}
	var q resource.Quantity
	switch kind {
	case "limits":
		q = limit(c.Resources.Limits, rn, defaults)
	case "requests":
		q = c.Resources.Requests[rn]
	default:
		return "", fmt.Errorf("unsupported container resource : %v", fs.Resource)
	}
	divisor := fs.Divisor
	if divisor.IsZero() {
		divisor = resource.MustParse("1")
	}
	return ceilRatio(&q, &divisor), nil
}

// downwardResource reports whether a resourceFieldRef may name rn.
func downwardResource(rn corev1.ResourceName) bool {
	switch rn {
	case corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourceEphemeralStorage:
		return true
	}
	return strings.HasPrefix(string(rn), corev1.ResourceHugePagesPrefix)
}

// limit is the limit of rn in limits, or its stand-in from defaults.
func limit(limits corev1.ResourceList, rn corev1.ResourceName, defaults []corev1.ResourceList) resource.Quantity {
	if q, ok := limits[rn]; (ok && !q.IsZero()) || !slices.Contains(defaultedLimits, rn) {
		return q
	}
	for _, d := range defaults {
		if q, ok := d[rn]; ok && !q.IsZero() {
			return q
		}
	}
	return resource.Quantity{}
}

// FindContainer finds a container of the pod by name, app containers
// first; init reports that it is an init container, which callers may
// treat differently when defaulting limits.
func FindContainer(pod *corev1.Pod, name string) (c *corev1.Container, init bool, err error) {
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Name == name {
			return &pod.Spec.Containers[i], false, nil
		}
	}
	for i := range pod.Spec.InitContainers {
		if pod.Spec.InitContainers[i].Name == name {
			return &pod.Spec.InitContainers[i], true, nil
		}
	}
	return nil, false, fmt.Errorf("container %s not found", name)
}

// PodLimits returns the pod-level cpu and memory limits the pod sets (a
// new list the caller may change). Kubelet lets them stand in for a
// container's unset limits ahead of the node's allocatable amounts; a
// pod-level ephemeral-storage limit does not.
func PodLimits(pod *corev1.Pod) corev1.ResourceList {
	out := corev1.ResourceList{}
	if pod.Spec.Resources == nil {
		return out
	}
	for _, rn := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if q, ok := pod.Spec.Resources.Limits[rn]; ok && !q.IsZero() {
			out[rn] = q.DeepCopy()
		}
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
