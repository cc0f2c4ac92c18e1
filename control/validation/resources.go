package validation

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

var standardContainerResources = sets.New("cpu", "memory", "ephemeral-storage")

// standardResources are the unprefixed names quota and limits know about.
var standardResources = sets.New(
	"cpu", "memory", "ephemeral-storage", "storage", "pods", "services",
	"replicationcontrollers", "resourcequotas", "secrets", "configmaps",
	"persistentvolumeclaims", "services.nodeports", "services.loadbalancers",
	"requests.cpu", "requests.memory", "requests.ephemeral-storage", "requests.storage",
	"limits.cpu", "limits.memory", "limits.ephemeral-storage",
)

func isHugePages(name corev1.ResourceName) bool {
	return strings.HasPrefix(string(name), corev1.ResourceHugePagesPrefix)
}

// isNative reports names in the kubernetes.io namespace or unprefixed.
func isNative(name corev1.ResourceName) bool {
	return !strings.Contains(string(name), "/") || strings.Contains(string(name), corev1.ResourceDefaultNamespacePrefix)
}

func isExtended(name corev1.ResourceName) bool {
	if isNative(name) || strings.HasPrefix(string(name), corev1.DefaultResourceRequestsPrefix) {
		return false
	}
	return len(validation.IsQualifiedName(corev1.DefaultResourceRequestsPrefix+string(name))) == 0
}

// Extended resources and huge pages cannot be overcommitted, so their
// requests must equal their limits.
func overcommitAllowed(name corev1.ResourceName) bool {
	return isNative(name) && !isHugePages(name)
}

func validateContainerResourceName(name corev1.ResourceName, p *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	for _, msg := range validation.IsQualifiedName(string(name)) {
		allErrs = append(allErrs, field.Invalid(p, name, msg))
	}
	if len(allErrs) != 0 {
		return allErrs
	}
	if !strings.Contains(string(name), "/") {
		if !standardResources.Has(string(name)) && !isHugePages(name) {
			return field.ErrorList{field.Invalid(p, name, "must be a standard resource type or fully qualified")}
		}
		if !standardContainerResources.Has(string(name)) && !isHugePages(name) {
			return field.ErrorList{field.Invalid(p, name, "must be a standard resource for containers")}
		}
	} else if !isNative(name) && !isExtended(name) {
		return field.ErrorList{field.Invalid(p, name, "doesn't follow extended resource name standard")}
	}
	return nil
}

func validateResourceQuantity(name corev1.ResourceName, q resource.Quantity, p *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if q.Cmp(resource.Quantity{}) < 0 {
		allErrs = append(allErrs, field.Invalid(p, q.String(), "must be greater than or equal to 0"))
	}
	if !isNative(name) && q.MilliValue()%1000 != 0 {
		allErrs = append(allErrs, field.Invalid(p, q, "must be an integer"))
	}
	return allErrs
}

func validateResourceRequirements(req *corev1.ResourceRequirements, claims sets.Set[string], fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	limPath, reqPath := fldPath.Child("limits"), fldPath.Child("requests")
	limCPUMem, reqCPUMem, limHuge, reqHuge := false, false, false, false
	for _, name := range sortedResourceNames(req.Limits) {
		q := req.Limits[name]
		p := limPath.Key(string(name))
		allErrs = append(allErrs, validateContainerResourceName(name, p)...)
		allErrs = append(allErrs, validateResourceQuantity(name, q, p)...)
		limHuge = limHuge || isHugePages(name)
		limCPUMem = limCPUMem || name == corev1.ResourceCPU || name == corev1.ResourceMemory
	}
	for _, name := range sortedResourceNames(req.Requests) {
		q := req.Requests[name]
		p := reqPath.Key(string(name))
		allErrs = append(allErrs, validateContainerResourceName(name, p)...)
		allErrs = append(allErrs, validateResourceQuantity(name, q, p)...)
		if lim, ok := req.Limits[name]; ok {
			if q.Cmp(lim) != 0 && !overcommitAllowed(name) {
				allErrs = append(allErrs, field.Invalid(reqPath, q.String(), fmt.Sprintf("must be equal to %s limit of %s", name, lim.String())))
			} else if q.Cmp(lim) > 0 {
				allErrs = append(allErrs, field.Invalid(reqPath, q.String(), fmt.Sprintf("must be less than or equal to %s limit of %s", name, lim.String())))
			}
		} else if !overcommitAllowed(name) {
			allErrs = append(allErrs, field.Required(limPath, "Limit must be set for non overcommitable resources"))
		}
		reqHuge = reqHuge || isHugePages(name)
		reqCPUMem = reqCPUMem || name == corev1.ResourceCPU || name == corev1.ResourceMemory
	}
	if !limCPUMem && !reqCPUMem && (limHuge || reqHuge) {
		allErrs = append(allErrs, field.Forbidden(fldPath, "HugePages require cpu or memory"))
	}
	names := sets.New[string]()
	for i, c := range req.Claims {
		p := fldPath.Child("claims").Index(i)
		if c.Name == "" {
			allErrs = append(allErrs, field.Required(p, ""))
			continue
		}
		key := c.Name
		if c.Request != "" {
			key += "/" + c.Request
		}
		if names.Has(key) {
			allErrs = append(allErrs, field.Duplicate(p, key))
		}
		names.Insert(key)
		if !claims.Has(c.Name) {
			e := field.NotFound(p, c.Name)
			e.Detail = "must be one of the names in pod.spec.resourceClaims"
			if claims.Len() == 0 {
				e.Detail += " which is empty"
			} else {
				e.Detail += ": " + strings.Join(sets.List(claims), ", ")
			}
			allErrs = append(allErrs, e)
		}
	}
	return allErrs
}

// sortedResourceNames gives maps a stable order so error lists are
// deterministic.
func sortedResourceNames(list corev1.ResourceList) []corev1.ResourceName {
	names := make([]corev1.ResourceName, 0, len(list))
	for n := range list {
		names = append(names, n)
	}
	for i := 1; i < len(names); i++ {
		for j := i; j > 0 && names[j] < names[j-1]; j-- {
			names[j], names[j-1] = names[j-1], names[j]
		}
	}
	return names
}
