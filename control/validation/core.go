package validation

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	netutils "k8s.io/utils/net"
)

// maxSecretSize caps Secret and ConfigMap payloads (1 MiB).
const maxSecretSize = 1 * 1024 * 1024

// ValidateNamespace validates a Namespace on create.
func ValidateNamespace(ns *corev1.Namespace) field.ErrorList {
	allErrs := ValidateObjectMeta(&ns.ObjectMeta, false, nameDNSLabel, metaPath())
	for i := range ns.Spec.Finalizers {
		allErrs = append(allErrs, validateFinalizerName(string(ns.Spec.Finalizers[i]), field.NewPath("spec", "finalizers"))...)
	}
	return allErrs
}

// ValidateNamespaceUpdate validates a Namespace update; upstream checks only metadata here.
func ValidateNamespaceUpdate(ns, old *corev1.Namespace) field.ErrorList {
	return ValidateObjectMetaUpdate(&ns.ObjectMeta, &old.ObjectMeta, metaPath())
}

// ValidateConfigMap validates a ConfigMap.
func ValidateConfigMap(cm *corev1.ConfigMap) field.ErrorList {
	allErrs := ValidateObjectMeta(&cm.ObjectMeta, true, nameDNSSubdomain, metaPath())
	total := 0
	for _, key := range sets.List(sets.KeySet(cm.Data)) {
		for _, msg := range validation.IsConfigMapKey(key) {
			allErrs = append(allErrs, field.Invalid(field.NewPath("data").Key(key), key, msg))
		}
		if _, dup := cm.BinaryData[key]; dup {
			allErrs = append(allErrs, field.Invalid(field.NewPath("data").Key(key), key, "duplicate of key present in binaryData"))
		}
		total += len(cm.Data[key])
	}
	for _, key := range sets.List(sets.KeySet(cm.BinaryData)) {
		for _, msg := range validation.IsConfigMapKey(key) {
			allErrs = append(allErrs, field.Invalid(field.NewPath("binaryData").Key(key), key, msg))
		}
		total += len(cm.BinaryData[key])
	}
	if total > maxSecretSize {
		allErrs = append(allErrs, field.TooLong(field.NewPath(""), "", maxSecretSize))
	}
	return allErrs
}

// ValidateConfigMapUpdate validates a ConfigMap update, honouring `immutable`.
func ValidateConfigMapUpdate(cm, old *corev1.ConfigMap) field.ErrorList {
	allErrs := ValidateObjectMetaUpdate(&cm.ObjectMeta, &old.ObjectMeta, metaPath())
	if old.Immutable != nil && *old.Immutable {
		const msg = "field is immutable when `immutable` is set"
		if cm.Immutable == nil || !*cm.Immutable {
			allErrs = append(allErrs, field.Forbidden(field.NewPath("immutable"), msg))
		}
		if !reflect.DeepEqual(cm.Data, old.Data) {
			allErrs = append(allErrs, field.Forbidden(field.NewPath("data"), msg))
		}
		if !reflect.DeepEqual(cm.BinaryData, old.BinaryData) {
			allErrs = append(allErrs, field.Forbidden(field.NewPath("binaryData"), msg))
		}
	}
	return append(allErrs, ValidateConfigMap(cm)...)
}

// ValidateSecret validates a Secret, including the keys its type requires.
func ValidateSecret(s *corev1.Secret) field.ErrorList {
	allErrs := ValidateObjectMeta(&s.ObjectMeta, true, nameDNSSubdomain, metaPath())
	dataPath := field.NewPath("data")
	total := 0
	for _, key := range sets.List(sets.KeySet(s.Data)) {
		for _, msg := range validation.IsConfigMapKey(key) {
			allErrs = append(allErrs, field.Invalid(dataPath.Key(key), key, msg))
		}
		total += len(s.Data[key])
	}
	if total > maxSecretSize {
		allErrs = append(allErrs, field.TooLong(dataPath, "", maxSecretSize))
	}
	requireJSON := func(key string) {
		b, ok := s.Data[key]
		if !ok {
			allErrs = append(allErrs, field.Required(dataPath.Key(key), ""))
			return
		}
		if err := json.Unmarshal(b, &map[string]interface{}{}); err != nil {
			allErrs = append(allErrs, field.Invalid(dataPath.Key(key), "<secret contents redacted>", err.Error()))
		}
	}
	switch s.Type {
	case corev1.SecretTypeServiceAccountToken:
		if s.Annotations[corev1.ServiceAccountNameKey] == "" {
			allErrs = append(allErrs, field.Required(metaPath().Child("annotations").Key(corev1.ServiceAccountNameKey), ""))
		}
	case corev1.SecretTypeDockercfg:
		requireJSON(corev1.DockerConfigKey)
	case corev1.SecretTypeDockerConfigJson:
		requireJSON(corev1.DockerConfigJsonKey)
	case corev1.SecretTypeBasicAuth:
		_, u := s.Data[corev1.BasicAuthUsernameKey]
		_, pw := s.Data[corev1.BasicAuthPasswordKey]
		if !u && !pw {
			allErrs = append(allErrs, field.Required(dataPath.Key(corev1.BasicAuthUsernameKey), ""))
			allErrs = append(allErrs, field.Required(dataPath.Key(corev1.BasicAuthPasswordKey), ""))
		}
	case corev1.SecretTypeSSHAuth:
		if len(s.Data[corev1.SSHAuthPrivateKey]) == 0 {
			allErrs = append(allErrs, field.Required(dataPath.Key(corev1.SSHAuthPrivateKey), ""))
		}
	case corev1.SecretTypeTLS:
		if _, ok := s.Data[corev1.TLSCertKey]; !ok {
			allErrs = append(allErrs, field.Required(dataPath.Key(corev1.TLSCertKey), ""))
		}
		if _, ok := s.Data[corev1.TLSPrivateKeyKey]; !ok {
			allErrs = append(allErrs, field.Required(dataPath.Key(corev1.TLSPrivateKeyKey), ""))
		}
	}
	return allErrs
}

// ValidateSecretUpdate validates a Secret update: type is immutable, and so
// is everything once `immutable` is set.
func ValidateSecretUpdate(s, old *corev1.Secret) field.ErrorList {
	allErrs := ValidateObjectMetaUpdate(&s.ObjectMeta, &old.ObjectMeta, metaPath())
	allErrs = append(allErrs, validateImmutable(s.Type, old.Type, field.NewPath("type"))...)
	if old.Immutable != nil && *old.Immutable {
		const msg = "field is immutable when `immutable` is set"
		if s.Immutable == nil || !*s.Immutable {
			allErrs = append(allErrs, field.Forbidden(field.NewPath("immutable"), msg))
		}
		if !reflect.DeepEqual(s.Data, old.Data) {
			allErrs = append(allErrs, field.Forbidden(field.NewPath("data"), msg))
		}
	}
	return append(allErrs, ValidateSecret(s)...)
}

// ValidateServiceAccount validates a ServiceAccount.
func ValidateServiceAccount(sa *corev1.ServiceAccount) field.ErrorList {
	return ValidateObjectMeta(&sa.ObjectMeta, true, nameDNSSubdomain, metaPath())
}

// ValidateServiceAccountUpdate validates a ServiceAccount update.
func ValidateServiceAccountUpdate(sa, old *corev1.ServiceAccount) field.ErrorList {
	allErrs := ValidateObjectMetaUpdate(&sa.ObjectMeta, &old.ObjectMeta, metaPath())
	return append(allErrs, ValidateServiceAccount(sa)...)
}

// ValidateEndpoints validates Endpoints.
func ValidateEndpoints(ep *corev1.Endpoints) field.ErrorList {
	allErrs := ValidateObjectMeta(&ep.ObjectMeta, true, nameDNSSubdomain, metaPath())
	p := field.NewPath("subsets")
	for i := range ep.Subsets {
		ss := &ep.Subsets[i]
		sp := p.Index(i)
		if len(ss.Addresses) == 0 && len(ss.NotReadyAddresses) == 0 {
			allErrs = append(allErrs, field.Required(sp, "must specify `addresses` or `notReadyAddresses`"))
		}
		for j := range ss.Addresses {
			allErrs = append(allErrs, validateEndpointAddress(&ss.Addresses[j], sp.Child("addresses").Index(j))...)
		}
		for j := range ss.NotReadyAddresses {
			allErrs = append(allErrs, validateEndpointAddress(&ss.NotReadyAddresses[j], sp.Child("notReadyAddresses").Index(j))...)
		}
		for j, port := range ss.Ports {
			pp := sp.Child("ports").Index(j)
			if len(ss.Ports) > 1 && port.Name == "" {
				allErrs = append(allErrs, field.Required(pp.Child("name"), ""))
			} else if port.Name != "" {
				allErrs = append(allErrs, validateDNS1123Label(port.Name, pp.Child("name"))...)
			}
			allErrs = append(allErrs, validatePortNum(port.Port, pp.Child("port"))...)
			allErrs = append(allErrs, validateProtocol(port.Protocol, pp.Child("protocol"))...)
			if port.AppProtocol != nil {
				allErrs = append(allErrs, validateQualifiedName(*port.AppProtocol, pp.Child("appProtocol"))...)
			}
		}
	}
	return allErrs
}

func validateEndpointAddress(a *corev1.EndpointAddress, p *field.Path) field.ErrorList {
	allErrs := validation.IsValidIP(p.Child("ip"), a.IP)
	if a.Hostname != "" {
		allErrs = append(allErrs, validateDNS1123Label(a.Hostname, p.Child("hostname"))...)
	}
	if a.NodeName != nil {
		allErrs = append(allErrs, validateNameRef(*a.NodeName, nameDNSSubdomain, p.Child("nodeName"))...)
	}
	return append(allErrs, validateNonSpecialIP(a.IP, p.Child("ip"))...)
}

// ValidateEndpointsUpdate validates an Endpoints update.
func ValidateEndpointsUpdate(ep, old *corev1.Endpoints) field.ErrorList {
	allErrs := ValidateObjectMetaUpdate(&ep.ObjectMeta, &old.ObjectMeta, metaPath())
	return append(allErrs, ValidateEndpoints(ep)...)
}

// ValidateNode validates a Node on create.
func ValidateNode(n *corev1.Node) field.ErrorList {
	allErrs := ValidateObjectMeta(&n.ObjectMeta, false, nameDNSSubdomain, metaPath())
	allErrs = append(allErrs, validateNodeTaints(n.Spec.Taints, metaPath().Child("taints"))...)
	allErrs = append(allErrs, validateNodeResources(n)...)
	if len(n.Spec.PodCIDRs) > 0 {
		p := field.NewPath("spec", "podCIDRs")
		for i, c := range n.Spec.PodCIDRs {
			allErrs = append(allErrs, validation.IsValidCIDR(p.Index(i), c)...)
		}
		if len(n.Spec.PodCIDRs) > 1 {
			if dual, err := netutils.IsDualStackCIDRStrings(n.Spec.PodCIDRs); err != nil || !dual || len(n.Spec.PodCIDRs) > 2 {
				allErrs = append(allErrs, field.Invalid(p, n.Spec.PodCIDRs, "may specify no more than one CIDR for each IP family"))
			}
		}
	}
	return allErrs
}

// Upstream reports node taint problems under metadata.taints; kept as is.
func validateNodeTaints(taints []corev1.Taint, p *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	seen := map[corev1.TaintEffect]sets.Set[string]{}
	for i, t := range taints {
		tp := p.Index(i)
		allErrs = append(allErrs, validateLabelName(t.Key, tp.Child("key"))...)
		if errs := validation.IsValidLabelValue(t.Value); len(errs) != 0 {
			allErrs = append(allErrs, field.Invalid(tp.Child("value"), t.Value, strings.Join(errs, ";")))
		}
		allErrs = append(allErrs, validateTaintEffect(t.Effect, tp.Child("effect"))...)
		if seen[t.Effect].Has(t.Key) {
			e := field.Duplicate(tp, t)
			e.Detail = "taints must be unique by key and effect pair"
			allErrs = append(allErrs, e)
			continue
		}
		if seen[t.Effect] == nil {
			seen[t.Effect] = sets.New[string]()
		}
		seen[t.Effect].Insert(t.Key)
	}
	return allErrs
}

func validateNodeResources(n *corev1.Node) field.ErrorList {
	var allErrs field.ErrorList
	for _, k := range sortedResourceNames(n.Status.Capacity) {
		allErrs = append(allErrs, validateResourceQuantity(k, n.Status.Capacity[k], field.NewPath("status", "capacity", string(k)))...)
	}
	for _, k := range sortedResourceNames(n.Status.Allocatable) {
		allErrs = append(allErrs, validateResourceQuantity(k, n.Status.Allocatable[k], field.NewPath("status", "allocatable", string(k)))...)
	}
	return allErrs
}

// ValidateNodeUpdate validates a Node update: podCIDRs and providerID may
// only go from unset to set.
func ValidateNodeUpdate(n, old *corev1.Node) field.ErrorList {
	allErrs := ValidateObjectMetaUpdate(&n.ObjectMeta, &old.ObjectMeta, metaPath())
	allErrs = append(allErrs, validateNodeResources(n)...)
	seen := map[corev1.NodeAddress]bool{}
	for i, a := range n.Status.Addresses {
		if seen[a] {
			allErrs = append(allErrs, field.Duplicate(field.NewPath("status", "addresses").Index(i), a))
		}
		seen[a] = true
	}
	if len(old.Spec.PodCIDRs) > 0 && !reflect.DeepEqual(old.Spec.PodCIDRs, n.Spec.PodCIDRs) {
		allErrs = append(allErrs, field.Forbidden(field.NewPath("spec", "podCIDRs"), "node updates may not change podCIDR except from \"\" to valid"))
	}
	if old.Spec.ProviderID != "" && old.Spec.ProviderID != n.Spec.ProviderID {
		allErrs = append(allErrs, field.Forbidden(field.NewPath("spec", "providerID"), "node updates may not change providerID except from \"\" to valid"))
	}
	allErrs = append(allErrs, validateNodeTaints(n.Spec.Taints, metaPath().Child("taints"))...)
	if n.Spec.DoNotUseExternalID != old.Spec.DoNotUseExternalID {
		allErrs = append(allErrs, field.Forbidden(field.NewPath("spec", "externalID"), "may not be updated"))
	}
	return allErrs
}

// Length limits of the event fields, from upstream.
const (
	reportingInstanceLengthLimit = 128
	actionLengthLimit            = 128
	reasonLengthLimit            = 128
	noteLengthLimit              = 1024
)

// ValidateEvent validates a core/v1 Event. Upstream applies only its
// legacy rules to events written through v1, metadata included.
func ValidateEvent(e *corev1.Event) field.ErrorList {
	return legacyValidateEvent(e, "source")
}

// ValidateEventUpdate validates a core/v1 Event update.
func ValidateEventUpdate(e, old *corev1.Event) field.ErrorList {
	allErrs := legacyValidateEvent(e, "source")
	allErrs = append(allErrs, ValidateObjectMetaUpdate(&e.ObjectMeta, &old.ObjectMeta, metaPath())...)
	if !old.EventTime.IsZero() {
		for _, f := range []struct {
			name     string
			new, old interface{}
		}{
			{"involvedObject", e.InvolvedObject, old.InvolvedObject},
			{"reason", e.Reason, old.Reason},
			{"message", e.Message, old.Message},
			{"source", e.Source, old.Source},
			{"firstTimestamp", e.FirstTimestamp, old.FirstTimestamp},
			{"lastTimestamp", e.LastTimestamp, old.LastTimestamp},
			{"count", e.Count, old.Count},
			{"type", e.Type, old.Type},
		} {
			allErrs = append(allErrs, validateImmutable(f.new, f.old, field.NewPath(f.name))...)
		}
	}
	return allErrs
}

func legacyValidateEvent(e *corev1.Event, controllerField string) field.ErrorList {
	var allErrs field.ErrorList
	nsPath := field.NewPath("involvedObject", "namespace")
	if e.EventTime.IsZero() {
		if e.InvolvedObject.Namespace == "" {
			if e.Namespace != "" && e.Namespace != "default" {
				allErrs = append(allErrs, field.Invalid(nsPath, e.InvolvedObject.Namespace, "does not match event.namespace"))
			}
		} else if e.Namespace != e.InvolvedObject.Namespace {
			allErrs = append(allErrs, field.Invalid(nsPath, e.InvolvedObject.Namespace, "does not match event.namespace"))
		}
	} else {
		if e.InvolvedObject.Namespace == "" && e.Namespace != "default" && e.Namespace != "kube-system" {
			allErrs = append(allErrs, field.Invalid(nsPath, e.InvolvedObject.Namespace, "does not match event.namespace"))
		}
		if e.ReportingController == "" {
			allErrs = append(allErrs, field.Required(field.NewPath(controllerField), ""))
		}
		allErrs = append(allErrs, validateQualifiedName(e.ReportingController, field.NewPath(controllerField))...)
		limit := func(name, v string, max int) {
			if v == "" && name != "message" {
				allErrs = append(allErrs, field.Required(field.NewPath(name), ""))
			}
			if len(v) > max {
				allErrs = append(allErrs, field.Invalid(field.NewPath(name), "", fmt.Sprintf("can have at most %v characters", max)))
			}
		}
		limit("reportingInstance", e.ReportingInstance, reportingInstanceLengthLimit)
		limit("action", e.Action, actionLengthLimit)
		limit("reason", e.Reason, reasonLengthLimit)
		limit("message", e.Message, noteLengthLimit)
	}
	for _, msg := range validation.IsDNS1123Subdomain(e.Namespace) {
		allErrs = append(allErrs, field.Invalid(field.NewPath("namespace"), e.Namespace, msg))
	}
	return allErrs
}
