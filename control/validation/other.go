package validation

import (
	"fmt"
	"strings"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	eventsv1 "k8s.io/api/events/v1"
	networkingv1 "k8s.io/api/networking/v1"
	nodev1 "k8s.io/api/node/v1"
	storagev1 "k8s.io/api/storage/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	netutils "k8s.io/utils/net"
)

const (
	maxEndpoints = 1000
	maxAddresses = 100
	maxPorts     = 20000
)

// ValidateEndpointSlice validates an EndpointSlice.
func ValidateEndpointSlice(es *discoveryv1.EndpointSlice) field.ErrorList {
	allErrs := ValidateObjectMeta(&es.ObjectMeta, true, nameDNSSubdomain, metaPath())
	valid := []discoveryv1.AddressType{discoveryv1.AddressTypeFQDN, discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv6}
	atPath := field.NewPath("addressType")
	switch es.AddressType {
	case "":
		allErrs = append(allErrs, field.Required(atPath, ""))
	case valid[0], valid[1], valid[2]:
	default:
		allErrs = append(allErrs, field.NotSupported(atPath, es.AddressType, valid))
	}
	ep := field.NewPath("endpoints")
	if len(es.Endpoints) > maxEndpoints {
		allErrs = append(allErrs, field.TooMany(ep, len(es.Endpoints), maxEndpoints))
	}
	for i, e := range es.Endpoints {
		p := ep.Index(i)
		ap := p.Child("addresses")
		if len(e.Addresses) == 0 {
			allErrs = append(allErrs, field.Required(ap, "must contain at least 1 address"))
		} else if len(e.Addresses) > maxAddresses {
			allErrs = append(allErrs, field.TooMany(ap, len(e.Addresses), maxAddresses))
		}
		for j, a := range e.Addresses {
			switch es.AddressType {
			case discoveryv1.AddressTypeIPv4:
				allErrs = append(allErrs, validateIPOfFamily(a, false, ap.Index(j))...)
			case discoveryv1.AddressTypeIPv6:
				allErrs = append(allErrs, validateIPOfFamily(a, true, ap.Index(j))...)
			case discoveryv1.AddressTypeFQDN:
				allErrs = append(allErrs, validation.IsFullyQualifiedDomainName(ap.Index(j), a)...)
			}
		}
		if e.NodeName != nil {
			allErrs = append(allErrs, validateNameRef(*e.NodeName, nameDNSSubdomain, p.Child("nodeName"))...)
		}
		if e.Hostname != nil {
			allErrs = append(allErrs, validateDNS1123Label(*e.Hostname, p.Child("hostname"))...)
		}
	}
	pp := field.NewPath("ports")
	if len(es.Ports) > maxPorts {
		allErrs = append(allErrs, field.TooMany(pp, len(es.Ports), maxPorts))
	}
	names := sets.New[string]()
	for i, port := range es.Ports {
		p := pp.Index(i)
		if port.Name != nil && *port.Name != "" {
			allErrs = append(allErrs, validateDNS1123Label(*port.Name, p.Child("name"))...)
		}
		name := ""
		if port.Name != nil {
			name = *port.Name
		}
		if names.Has(name) {
			allErrs = append(allErrs, field.Duplicate(p.Child("name"), name))
		}
		names.Insert(name)
		if port.Protocol == nil {
			allErrs = append(allErrs, field.Required(p.Child("protocol"), ""))
		} else {
			allErrs = append(allErrs, validateProtocol(*port.Protocol, p.Child("protocol"))...)
		}
		if port.AppProtocol != nil {
			allErrs = append(allErrs, validateQualifiedName(*port.AppProtocol, p.Child("appProtocol"))...)
		}
	}
	return allErrs
}

// ValidateEndpointSliceUpdate validates an EndpointSlice update; the
// address type is fixed.
func ValidateEndpointSliceUpdate(es, old *discoveryv1.EndpointSlice) field.ErrorList {
	allErrs := ValidateObjectMetaUpdate(&es.ObjectMeta, &old.ObjectMeta, metaPath())
	allErrs = append(allErrs, ValidateEndpointSlice(es)...)
	return append(allErrs, validateImmutable(es.AddressType, old.AddressType, field.NewPath("addressType"))...)
}

// ValidateLease validates a Lease.
func ValidateLease(l *coordinationv1.Lease) field.ErrorList {
	allErrs := ValidateObjectMeta(&l.ObjectMeta, true, nameDNSSubdomain, metaPath())
	p := field.NewPath("spec")
	if d := l.Spec.LeaseDurationSeconds; d != nil && *d <= 0 {
		allErrs = append(allErrs, field.Invalid(p.Child("leaseDurationSeconds"), *d, "must be greater than 0"))
	}
	if t := l.Spec.LeaseTransitions; t != nil && *t < 0 {
		allErrs = append(allErrs, field.Invalid(p.Child("leaseTransitions"), *t, "must be greater than or equal to 0"))
	}
	return allErrs
}

// ValidateLeaseUpdate validates a Lease update.
func ValidateLeaseUpdate(l, old *coordinationv1.Lease) field.ErrorList {
	allErrs := ValidateObjectMetaUpdate(&l.ObjectMeta, &old.ObjectMeta, metaPath())
	return append(allErrs, ValidateLease(l)...)
}

// ValidateHorizontalPodAutoscaler validates an autoscaling/v2 HPA.
func ValidateHorizontalPodAutoscaler(h *autoscalingv2.HorizontalPodAutoscaler) field.ErrorList {
	allErrs := ValidateObjectMeta(&h.ObjectMeta, true, namePathSegment, metaPath())
	p := field.NewPath("spec")
	spec := &h.Spec
	if spec.MinReplicas != nil && *spec.MinReplicas < 1 {
		allErrs = append(allErrs, field.Invalid(p.Child("minReplicas"), *spec.MinReplicas, "must be greater than or equal to 1"))
	}
	if spec.MaxReplicas < 1 {
		allErrs = append(allErrs, field.Invalid(p.Child("maxReplicas"), spec.MaxReplicas, "must be greater than 0"))
	}
	if spec.MinReplicas != nil && spec.MaxReplicas < *spec.MinReplicas {
		allErrs = append(allErrs, field.Invalid(p.Child("maxReplicas"), spec.MaxReplicas, "must be greater than or equal to `minReplicas`"))
	}
	rp := p.Child("scaleTargetRef")
	for _, f := range []struct{ name, v string }{{"kind", spec.ScaleTargetRef.Kind}, {"name", spec.ScaleTargetRef.Name}} {
		if f.v == "" {
			allErrs = append(allErrs, field.Required(rp.Child(f.name), ""))
			continue
		}
		for _, msg := range namePathSegment(f.v, false) {
			allErrs = append(allErrs, field.Invalid(rp.Child(f.name), f.v, msg))
		}
	}
	valid := []autoscalingv2.MetricSourceType{autoscalingv2.ContainerResourceMetricSourceType, autoscalingv2.ExternalMetricSourceType,
		autoscalingv2.ObjectMetricSourceType, autoscalingv2.PodsMetricSourceType, autoscalingv2.ResourceMetricSourceType}
	for i, m := range spec.Metrics {
		mp := p.Child("metrics").Index(i)
		switch m.Type {
		case "":
			allErrs = append(allErrs, field.Required(mp.Child("type"), "must specify a metric source type"))
		case valid[0], valid[1], valid[2], valid[3], valid[4]:
		default:
			allErrs = append(allErrs, field.NotSupported(mp.Child("type"), m.Type, valid))
		}
		if m.Type == autoscalingv2.ResourceMetricSourceType {
			if m.Resource == nil {
				allErrs = append(allErrs, field.Required(mp.Child("resource"), "must populate information for the given metric source"))
			} else if m.Resource.Name == "" {
				allErrs = append(allErrs, field.Required(mp.Child("resource", "name"), "must specify a resource name"))
			}
		}
	}
	return allErrs
}

// ValidateHorizontalPodAutoscalerUpdate validates an HPA update.
func ValidateHorizontalPodAutoscalerUpdate(h, old *autoscalingv2.HorizontalPodAutoscaler) field.ErrorList {
	allErrs := ValidateObjectMetaUpdate(&h.ObjectMeta, &old.ObjectMeta, metaPath())
	return append(allErrs, ValidateHorizontalPodAutoscaler(h)...)
}

// ValidateRuntimeClass validates a RuntimeClass.
func ValidateRuntimeClass(rc *nodev1.RuntimeClass) field.ErrorList {
	allErrs := ValidateObjectMeta(&rc.ObjectMeta, false, nameDNSSubdomain, metaPath())
	for _, msg := range nameDNSLabel(rc.Handler, false) {
		allErrs = append(allErrs, field.Invalid(field.NewPath("handler"), rc.Handler, msg))
	}
	if rc.Scheduling != nil {
		allErrs = append(allErrs, validateLabels(rc.Scheduling.NodeSelector, field.NewPath("scheduling", "nodeSelector"))...)
		allErrs = append(allErrs, ValidateTolerations(rc.Scheduling.Tolerations, field.NewPath("scheduling", "tolerations"))...)
	}
	return allErrs
}

// ValidateRuntimeClassUpdate validates a RuntimeClass update; the handler is fixed.
func ValidateRuntimeClassUpdate(rc, old *nodev1.RuntimeClass) field.ErrorList {
	allErrs := ValidateObjectMetaUpdate(&rc.ObjectMeta, &old.ObjectMeta, metaPath())
	allErrs = append(allErrs, validateImmutable(rc.Handler, old.Handler, field.NewPath("handler"))...)
	return append(allErrs, ValidateRuntimeClass(rc)...)
}

// ValidateNetworkPolicy validates a NetworkPolicy.
func ValidateNetworkPolicy(np *networkingv1.NetworkPolicy) field.ErrorList {
	allErrs := ValidateObjectMeta(&np.ObjectMeta, true, nameDNSSubdomain, metaPath())
	p := field.NewPath("spec")
	allErrs = append(allErrs, validateLabelSelector(&np.Spec.PodSelector, p.Child("podSelector"))...)
	for i, r := range np.Spec.Ingress {
		rp := p.Child("ingress").Index(i)
		allErrs = append(allErrs, validateNetworkPolicyPorts(r.Ports, rp.Child("ports"))...)
		for j, peer := range r.From {
			allErrs = append(allErrs, validateNetworkPolicyPeer(peer, rp.Child("from").Index(j))...)
		}
	}
	for i, r := range np.Spec.Egress {
		rp := p.Child("egress").Index(i)
		allErrs = append(allErrs, validateNetworkPolicyPorts(r.Ports, rp.Child("ports"))...)
		for j, peer := range r.To {
			allErrs = append(allErrs, validateNetworkPolicyPeer(peer, rp.Child("to").Index(j))...)
		}
	}
	valid := []string{string(networkingv1.PolicyTypeIngress), string(networkingv1.PolicyTypeEgress)}
	for i, t := range np.Spec.PolicyTypes {
		if string(t) != valid[0] && string(t) != valid[1] {
			allErrs = append(allErrs, field.NotSupported(p.Child("policyTypes").Index(i), t, valid))
		}
	}
	if len(np.Spec.PolicyTypes) > len(valid) {
		allErrs = append(allErrs, field.Invalid(p.Child("policyTypes"), np.Spec.PolicyTypes, "may not specify more than two policyTypes"))
	}
	return allErrs
}

func validateNetworkPolicyPorts(ports []networkingv1.NetworkPolicyPort, p *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	for i, port := range ports {
		pp := p.Index(i)
		if port.Protocol != nil {
			allErrs = append(allErrs, validateProtocol(*port.Protocol, pp.Child("protocol"))...)
		}
		if port.Port != nil {
			allErrs = append(allErrs, validatePortNumOrName(*port.Port, pp.Child("port"))...)
			if port.EndPort != nil && *port.EndPort < port.Port.IntVal {
				allErrs = append(allErrs, field.Invalid(pp.Child("endPort"), *port.EndPort, "must be greater than or equal to `port`"))
			}
		} else if port.EndPort != nil {
			allErrs = append(allErrs, field.Required(pp.Child("port"), "must be specified when endPort is specified"))
		}
	}
	return allErrs
}

func validateNetworkPolicyPeer(peer networkingv1.NetworkPolicyPeer, p *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	n := 0
	if peer.PodSelector != nil {
		n++
		allErrs = append(allErrs, validateLabelSelector(peer.PodSelector, p.Child("podSelector"))...)
	}
	if peer.NamespaceSelector != nil {
		n++
		allErrs = append(allErrs, validateLabelSelector(peer.NamespaceSelector, p.Child("namespaceSelector"))...)
	}
	if peer.IPBlock != nil {
		n++
		allErrs = append(allErrs, validation.IsValidCIDR(p.Child("ipBlock", "cidr"), peer.IPBlock.CIDR)...)
		for i, ex := range peer.IPBlock.Except {
			allErrs = append(allErrs, validation.IsValidCIDR(p.Child("ipBlock", "except").Index(i), ex)...)
		}
	}
	switch {
	case n == 0:
		allErrs = append(allErrs, field.Required(p, "must specify a peer"))
	case n > 1 && peer.IPBlock != nil:
		allErrs = append(allErrs, field.Forbidden(p, "may not specify both ipBlock and another peer"))
	}
	return allErrs
}

// ValidateNetworkPolicyUpdate validates a NetworkPolicy update.
func ValidateNetworkPolicyUpdate(np, old *networkingv1.NetworkPolicy) field.ErrorList {
	allErrs := ValidateObjectMetaUpdate(&np.ObjectMeta, &old.ObjectMeta, metaPath())
	return append(allErrs, ValidateNetworkPolicy(np)...)
}

// eventsToCore maps an events.k8s.io Event onto the core fields that
// upstream's shared event validation reports against.
func eventsToCore(e *eventsv1.Event) *corev1.Event {
	return &corev1.Event{
		ObjectMeta: e.ObjectMeta, InvolvedObject: e.Regarding, Reason: e.Reason, Message: e.Note,
		Source: e.DeprecatedSource, FirstTimestamp: e.DeprecatedFirstTimestamp, LastTimestamp: e.DeprecatedLastTimestamp,
		Count: e.DeprecatedCount, Type: e.Type, EventTime: e.EventTime, Action: e.Action,
		ReportingController: e.ReportingController, ReportingInstance: e.ReportingInstance,
	}
}

// ValidateEventsEvent validates an events.k8s.io/v1 Event with upstream's
// strict rules for the new API.
func ValidateEventsEvent(e *eventsv1.Event) field.ErrorList {
	ce := eventsToCore(e)
	allErrs := legacyValidateEvent(ce, "reportingController")
	allErrs = append(allErrs, ValidateObjectMeta(&ce.ObjectMeta, true, nameDNSSubdomain, metaPath())...)
	if s := e.Series; s != nil {
		if s.Count < 2 {
			allErrs = append(allErrs, field.Invalid(field.NewPath("series.count"), "", "should be at least 2"))
		}
		if s.LastObservedTime.IsZero() {
			allErrs = append(allErrs, field.Required(field.NewPath("series.lastObservedTime"), ""))
		}
	}
	if e.EventTime.IsZero() {
		allErrs = append(allErrs, field.Required(field.NewPath("eventTime"), ""))
	}
	if e.Type != corev1.EventTypeNormal && e.Type != corev1.EventTypeWarning {
		allErrs = append(allErrs, field.Invalid(field.NewPath("type"), "", fmt.Sprintf("has invalid value: %v", e.Type)))
	}
	if !e.DeprecatedFirstTimestamp.IsZero() {
		allErrs = append(allErrs, field.Invalid(field.NewPath("firstTimestamp"), "", "needs to be unset"))
	}
	if !e.DeprecatedLastTimestamp.IsZero() {
		allErrs = append(allErrs, field.Invalid(field.NewPath("lastTimestamp"), "", "needs to be unset"))
	}
	if e.DeprecatedCount != 0 {
		allErrs = append(allErrs, field.Invalid(field.NewPath("count"), "", "needs to be unset"))
	}
	if e.DeprecatedSource.Component != "" || e.DeprecatedSource.Host != "" {
		allErrs = append(allErrs, field.Invalid(field.NewPath("source"), "", "needs to be unset"))
	}
	return allErrs
}

// ValidateEventsEventUpdate validates an events.k8s.io/v1 Event update.
func ValidateEventsEventUpdate(e, old *eventsv1.Event) field.ErrorList {
	return ValidateEventUpdate(eventsToCore(e), eventsToCore(old))
}

// ValidateStorageClass validates a StorageClass.
func ValidateStorageClass(sc *storagev1.StorageClass) field.ErrorList {
	allErrs := ValidateObjectMeta(&sc.ObjectMeta, false, nameDNSSubdomain, metaPath())
	pp := field.NewPath("provisioner")
	// A provisioner is a qualified name, as upstream's: "rancher.io/local-path"
	// and "kubernetes.io/no-provisioner" are both valid.
	if sc.Provisioner == "" {
		allErrs = append(allErrs, field.Required(pp, ""))
	} else {
		allErrs = append(allErrs, validateQualifiedName(strings.ToLower(sc.Provisioner), pp)...)
	}
	if rp := sc.ReclaimPolicy; rp != nil && *rp != corev1.PersistentVolumeReclaimDelete && *rp != corev1.PersistentVolumeReclaimRetain {
		allErrs = append(allErrs, field.NotSupported(field.NewPath("reclaimPolicy"), *rp,
			[]corev1.PersistentVolumeReclaimPolicy{corev1.PersistentVolumeReclaimDelete, corev1.PersistentVolumeReclaimRetain}))
	}
	bp := field.NewPath("volumeBindingMode")
	if sc.VolumeBindingMode == nil {
		allErrs = append(allErrs, field.Required(bp, ""))
	} else if m := *sc.VolumeBindingMode; m != storagev1.VolumeBindingImmediate && m != storagev1.VolumeBindingWaitForFirstConsumer {
		allErrs = append(allErrs, field.NotSupported(bp, m, []storagev1.VolumeBindingMode{storagev1.VolumeBindingImmediate, storagev1.VolumeBindingWaitForFirstConsumer}))
	}
	return allErrs
}

// ValidateStorageClassUpdate validates a StorageClass update; everything
// but metadata and allowVolumeExpansion is fixed.
func ValidateStorageClassUpdate(sc, old *storagev1.StorageClass) field.ErrorList {
	allErrs := ValidateObjectMetaUpdate(&sc.ObjectMeta, &old.ObjectMeta, metaPath())
	if !apiequality.Semantic.DeepEqual(sc.Parameters, old.Parameters) {
		allErrs = append(allErrs, field.Forbidden(field.NewPath("parameters"), "updates to parameters are forbidden."))
	}
	if sc.Provisioner != old.Provisioner {
		allErrs = append(allErrs, field.Forbidden(field.NewPath("provisioner"), "updates to provisioner are forbidden."))
	}
	if !apiequality.Semantic.DeepEqual(sc.ReclaimPolicy, old.ReclaimPolicy) {
		allErrs = append(allErrs, field.Forbidden(field.NewPath("reclaimPolicy"), "updates to reclaimPolicy are forbidden."))
	}
	allErrs = append(allErrs, validateImmutable(sc.VolumeBindingMode, old.VolumeBindingMode, field.NewPath("volumeBindingMode"))...)
	return append(allErrs, ValidateStorageClass(sc)...)
}

func validateIPOfFamily(addr string, v6 bool, p *field.Path) field.ErrorList {
	if errs := validation.IsValidIP(p, addr); len(errs) != 0 {
		return errs
	}
	if v6 != netutils.IsIPv6String(addr) {
		if v6 {
			return field.ErrorList{field.Invalid(p, addr, "must be a valid IPv6 address")}
		}
		return field.ErrorList{field.Invalid(p, addr, "must be a valid IPv4 address")}
	}
	return nil
}
