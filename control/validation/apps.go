package validation

import (
	"fmt"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// validateWorkloadSelector applies the selector rules shared by
// Deployments, ReplicaSets and StatefulSets and returns the parsed
// selector for template matching (nil if it does not parse).
func validateWorkloadSelector(sel *metav1.LabelSelector, kind string, p *field.Path) (labels.Selector, field.ErrorList) {
	var allErrs field.ErrorList
	if sel == nil {
		allErrs = append(allErrs, field.Required(p, ""))
	} else {
		allErrs = append(allErrs, validateLabelSelector(sel, p)...)
		if len(sel.MatchLabels)+len(sel.MatchExpressions) == 0 {
			allErrs = append(allErrs, field.Invalid(p, sel, "empty selector is invalid for "+kind))
		}
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return nil, allErrs
	}
	return s, allErrs
}

func selectorMatchesTemplate(s labels.Selector, tmpl *corev1.PodTemplateSpec, p *field.Path) field.ErrorList {
	if !s.Empty() && !s.Matches(labels.Set(tmpl.Labels)) {
		return field.ErrorList{field.Invalid(p.Child("metadata", "labels"), tmpl.Labels, "`selector` does not match template `labels`")}
	}
	return nil
}

// validateTemplateForReplicaSet checks a template whose pods are kept
// running: selector match, pod rules, restartPolicy Always.
func validateTemplateForReplicaSet(tmpl *corev1.PodTemplateSpec, s labels.Selector, p *field.Path) field.ErrorList {
	allErrs := selectorMatchesTemplate(s, tmpl, p)
	allErrs = append(allErrs, ValidatePodTemplateSpec(tmpl, p)...)
	if tmpl.Spec.RestartPolicy != corev1.RestartPolicyAlways {
		allErrs = append(allErrs, field.NotSupported(p.Child("spec", "restartPolicy"), tmpl.Spec.RestartPolicy, []corev1.RestartPolicy{corev1.RestartPolicyAlways}))
	}
	if tmpl.Spec.ActiveDeadlineSeconds != nil {
		allErrs = append(allErrs, field.Forbidden(p.Child("spec", "activeDeadlineSeconds"), "activeDeadlineSeconds in ReplicaSet is not Supported"))
	}
	return allErrs
}

func int32Val(p *int32) int32 {
	if p == nil {
		return 0
	}
	return *p
}

// ValidateDeployment validates a Deployment on create.
func ValidateDeployment(d *appsv1.Deployment) field.ErrorList {
	allErrs := ValidateObjectMeta(&d.ObjectMeta, true, nameDNSSubdomain, metaPath())
	return append(allErrs, validateDeploymentSpec(&d.Spec, field.NewPath("spec"))...)
}

func validateDeploymentSpec(spec *appsv1.DeploymentSpec, p *field.Path) field.ErrorList {
	allErrs := validateNonnegative(int64(int32Val(spec.Replicas)), p.Child("replicas"))
	s, errs := validateWorkloadSelector(spec.Selector, "deployment", p.Child("selector"))
	allErrs = append(allErrs, errs...)
	if s == nil {
		allErrs = append(allErrs, field.Invalid(p.Child("selector"), spec.Selector, "invalid label selector"))
	} else {
		allErrs = append(allErrs, validateTemplateForReplicaSet(&spec.Template, s, p.Child("template"))...)
	}
	sp := p.Child("strategy")
	switch spec.Strategy.Type {
	case appsv1.RecreateDeploymentStrategyType:
		if spec.Strategy.RollingUpdate != nil {
			allErrs = append(allErrs, field.Forbidden(sp.Child("rollingUpdate"), "may not be specified when strategy `type` is 'Recreate'"))
		}
	case appsv1.RollingUpdateDeploymentStrategyType:
		if ru := spec.Strategy.RollingUpdate; ru == nil {
			allErrs = append(allErrs, field.Required(sp.Child("rollingUpdate"), "this should be defaulted and never be nil"))
		} else {
			rp := sp.Child("rollingUpdate")
			allErrs = append(allErrs, validatePositiveIntOrPercent(ru.MaxUnavailable, rp.Child("maxUnavailable"))...)
			allErrs = append(allErrs, validatePositiveIntOrPercent(ru.MaxSurge, rp.Child("maxSurge"))...)
			if intOrPercentValue(ru.MaxUnavailable) == 0 && intOrPercentValue(ru.MaxSurge) == 0 {
				allErrs = append(allErrs, field.Invalid(rp.Child("maxUnavailable"), ru.MaxUnavailable, "may not be 0 when `maxSurge` is 0"))
			}
			allErrs = append(allErrs, notMoreThan100Percent(ru.MaxUnavailable, rp.Child("maxUnavailable"))...)
		}
	default:
		allErrs = append(allErrs, field.NotSupported(sp, spec.Strategy,
			[]appsv1.DeploymentStrategyType{appsv1.RecreateDeploymentStrategyType, appsv1.RollingUpdateDeploymentStrategyType}))
	}
	allErrs = append(allErrs, validateNonnegative(int64(spec.MinReadySeconds), p.Child("minReadySeconds"))...)
	if spec.RevisionHistoryLimit != nil {
		allErrs = append(allErrs, validateNonnegative(int64(*spec.RevisionHistoryLimit), p.Child("revisionHistoryLimit"))...)
	}
	if pds := spec.ProgressDeadlineSeconds; pds != nil {
		allErrs = append(allErrs, validateNonnegative(int64(*pds), p.Child("progressDeadlineSeconds"))...)
		if *pds <= spec.MinReadySeconds {
			allErrs = append(allErrs, field.Invalid(p.Child("progressDeadlineSeconds"), *pds, "must be greater than minReadySeconds"))
		}
	}
	return allErrs
}

// ValidateDeploymentUpdate validates a Deployment update; in apps/v1 the
// selector is immutable.
func ValidateDeploymentUpdate(d, old *appsv1.Deployment) field.ErrorList {
	allErrs := ValidateObjectMetaUpdate(&d.ObjectMeta, &old.ObjectMeta, metaPath())
	allErrs = append(allErrs, validateDeploymentSpec(&d.Spec, field.NewPath("spec"))...)
	return append(allErrs, validateImmutable(d.Spec.Selector, old.Spec.Selector, field.NewPath("spec", "selector"))...)
}

func validatePositiveIntOrPercent(v *intstr.IntOrString, p *field.Path) field.ErrorList {
	if v == nil {
		return nil
	}
	var allErrs field.ErrorList
	switch v.Type {
	case intstr.String:
		for _, msg := range validation.IsValidPercent(v.StrVal) {
			allErrs = append(allErrs, field.Invalid(p, *v, msg))
		}
	case intstr.Int:
		allErrs = append(allErrs, validateNonnegative(int64(v.IntValue()), p)...)
	default:
		allErrs = append(allErrs, field.Invalid(p, *v, "must be an integer or percentage (e.g '5%')"))
	}
	return allErrs
}

func percentValue(v *intstr.IntOrString) (int, bool) {
	if v == nil || v.Type != intstr.String {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimSuffix(v.StrVal, "%"))
	return n, err == nil && strings.HasSuffix(v.StrVal, "%")
}

func intOrPercentValue(v *intstr.IntOrString) int {
	if n, ok := percentValue(v); ok {
		return n
	}
	if v == nil || v.Type != intstr.Int {
		return 0
	}
	return v.IntValue()
}

func notMoreThan100Percent(v *intstr.IntOrString, p *field.Path) field.ErrorList {
	if n, ok := percentValue(v); ok && n > 100 {
		return field.ErrorList{field.Invalid(p, *v, "must not be greater than 100%")}
	}
	return nil
}

// ValidateReplicaSet validates a ReplicaSet on create.
func ValidateReplicaSet(rs *appsv1.ReplicaSet) field.ErrorList {
	allErrs := ValidateObjectMeta(&rs.ObjectMeta, true, nameDNSSubdomain, metaPath())
	return append(allErrs, validateReplicaSetSpec(&rs.Spec, field.NewPath("spec"))...)
}

func validateReplicaSetSpec(spec *appsv1.ReplicaSetSpec, p *field.Path) field.ErrorList {
	allErrs := validateNonnegative(int64(int32Val(spec.Replicas)), p.Child("replicas"))
	allErrs = append(allErrs, validateNonnegative(int64(spec.MinReadySeconds), p.Child("minReadySeconds"))...)
	// Upstream's message names deployments here too.
	s, errs := validateWorkloadSelector(spec.Selector, "deployment", p.Child("selector"))
	allErrs = append(allErrs, errs...)
	if s == nil {
		return append(allErrs, field.Invalid(p.Child("selector"), spec.Selector, "invalid label selector"))
	}
	return append(allErrs, validateTemplateForReplicaSet(&spec.Template, s, p.Child("template"))...)
}

// ValidateReplicaSetUpdate validates a ReplicaSet update; in apps/v1 the
// selector is immutable.
func ValidateReplicaSetUpdate(rs, old *appsv1.ReplicaSet) field.ErrorList {
	allErrs := ValidateObjectMetaUpdate(&rs.ObjectMeta, &old.ObjectMeta, metaPath())
	allErrs = append(allErrs, validateReplicaSetSpec(&rs.Spec, field.NewPath("spec"))...)
	return append(allErrs, validateImmutable(rs.Spec.Selector, old.Spec.Selector, field.NewPath("spec", "selector"))...)
}

// ValidateDaemonSet validates a DaemonSet on create.
func ValidateDaemonSet(ds *appsv1.DaemonSet) field.ErrorList {
	allErrs := ValidateObjectMeta(&ds.ObjectMeta, true, nameDNSSubdomain, metaPath())
	return append(allErrs, validateDaemonSetSpec(&ds.Spec, field.NewPath("spec"))...)
}

func validateDaemonSetSpec(spec *appsv1.DaemonSetSpec, p *field.Path) field.ErrorList {
	allErrs := validateLabelSelector(spec.Selector, p.Child("selector"))
	if s, err := metav1.LabelSelectorAsSelector(spec.Selector); err == nil && !s.Matches(labels.Set(spec.Template.Labels)) {
		allErrs = append(allErrs, field.Invalid(p.Child("template", "metadata", "labels"), spec.Template.Labels, "`selector` does not match template `labels`"))
	}
	if spec.Selector != nil && len(spec.Selector.MatchLabels)+len(spec.Selector.MatchExpressions) == 0 {
		allErrs = append(allErrs, field.Invalid(p.Child("selector"), spec.Selector, "empty selector is invalid for daemonset"))
	}
	allErrs = append(allErrs, ValidatePodTemplateSpec(&spec.Template, p.Child("template"))...)
	if spec.Template.Spec.RestartPolicy != corev1.RestartPolicyAlways {
		allErrs = append(allErrs, field.NotSupported(p.Child("template", "spec", "restartPolicy"), spec.Template.Spec.RestartPolicy, []corev1.RestartPolicy{corev1.RestartPolicyAlways}))
	}
	if spec.Template.Spec.ActiveDeadlineSeconds != nil {
		allErrs = append(allErrs, field.Invalid(p.Child("template", "spec", "activeDeadlineSeconds"), *spec.Template.Spec.ActiveDeadlineSeconds, "activeDeadlineSeconds in DaemonSet is not Supported"))
	}
	allErrs = append(allErrs, validateNonnegative(int64(spec.MinReadySeconds), p.Child("minReadySeconds"))...)
	up := p.Child("updateStrategy")
	switch spec.UpdateStrategy.Type {
	case appsv1.OnDeleteDaemonSetStrategyType:
	case appsv1.RollingUpdateDaemonSetStrategyType:
		ru := spec.UpdateStrategy.RollingUpdate
		if ru == nil {
			allErrs = append(allErrs, field.Required(up.Child("rollingUpdate"), ""))
			break
		}
		rp := up.Child("rollingUpdate")
		allErrs = append(allErrs, validatePositiveIntOrPercent(ru.MaxUnavailable, rp.Child("maxUnavailable"))...)
		allErrs = append(allErrs, validatePositiveIntOrPercent(ru.MaxSurge, rp.Child("maxSurge"))...)
		allErrs = append(allErrs, notMoreThan100Percent(ru.MaxUnavailable, rp.Child("maxUnavailable"))...)
		allErrs = append(allErrs, notMoreThan100Percent(ru.MaxSurge, rp.Child("maxSurge"))...)
		hasUnavailable, hasSurge := intOrPercentValue(ru.MaxUnavailable) != 0, intOrPercentValue(ru.MaxSurge) != 0
		switch {
		case hasUnavailable && hasSurge:
			allErrs = append(allErrs, field.Invalid(rp.Child("maxSurge"), ru.MaxSurge, "may not be set when maxUnavailable is non-zero"))
		case !hasUnavailable && !hasSurge:
			allErrs = append(allErrs, field.Required(rp.Child("maxUnavailable"), "cannot be 0 when maxSurge is 0"))
		}
	default:
		allErrs = append(allErrs, field.NotSupported(up, spec.UpdateStrategy,
			[]string{string(appsv1.RollingUpdateDaemonSetStrategyType), string(appsv1.OnDeleteDaemonSetStrategyType)}))
	}
	if spec.RevisionHistoryLimit != nil {
		allErrs = append(allErrs, validateNonnegative(int64(*spec.RevisionHistoryLimit), p.Child("revisionHistoryLimit"))...)
	}
	return allErrs
}

// ValidateDaemonSetUpdate validates a DaemonSet update; in apps/v1 the
// selector is immutable.
func ValidateDaemonSetUpdate(ds, old *appsv1.DaemonSet) field.ErrorList {
	allErrs := ValidateObjectMetaUpdate(&ds.ObjectMeta, &old.ObjectMeta, metaPath())
	allErrs = append(allErrs, validateDaemonSetSpec(&ds.Spec, field.NewPath("spec"))...)
	return append(allErrs, validateImmutable(ds.Spec.Selector, old.Spec.Selector, field.NewPath("spec", "selector"))...)
}

// ValidateStatefulSet validates a StatefulSet on create.
func ValidateStatefulSet(ss *appsv1.StatefulSet) field.ErrorList {
	allErrs := ValidateObjectMeta(&ss.ObjectMeta, true, nameDNSSubdomain, metaPath())
	return append(allErrs, validateStatefulSetSpec(&ss.Spec, field.NewPath("spec"))...)
}

func validateStatefulSetSpec(spec *appsv1.StatefulSetSpec, p *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	switch spec.PodManagementPolicy {
	case "":
		allErrs = append(allErrs, field.Required(p.Child("podManagementPolicy"), ""))
	case appsv1.OrderedReadyPodManagement, appsv1.ParallelPodManagement:
	default:
		allErrs = append(allErrs, field.Invalid(p.Child("podManagementPolicy"), spec.PodManagementPolicy,
			fmt.Sprintf("must be '%s' or '%s'", appsv1.OrderedReadyPodManagement, appsv1.ParallelPodManagement)))
	}
	up := p.Child("updateStrategy")
	switch spec.UpdateStrategy.Type {
	case "":
		allErrs = append(allErrs, field.Required(up, ""))
	case appsv1.OnDeleteStatefulSetStrategyType:
		if spec.UpdateStrategy.RollingUpdate != nil {
			allErrs = append(allErrs, field.Invalid(up.Child("rollingUpdate"), spec.UpdateStrategy.RollingUpdate,
				fmt.Sprintf("only allowed for updateStrategy '%s'", appsv1.RollingUpdateStatefulSetStrategyType)))
		}
	case appsv1.RollingUpdateStatefulSetStrategyType:
		if ru := spec.UpdateStrategy.RollingUpdate; ru != nil {
			rp := up.Child("rollingUpdate")
			allErrs = append(allErrs, validateNonnegative(int64(int32Val(ru.Partition)), rp.Child("partition"))...)
			if ru.MaxUnavailable != nil {
				allErrs = append(allErrs, validatePositiveIntOrPercent(ru.MaxUnavailable, rp.Child("maxUnavailable"))...)
				if intOrPercentValue(ru.MaxUnavailable) == 0 {
					allErrs = append(allErrs, field.Invalid(rp.Child("maxUnavailable"), ru.MaxUnavailable, "cannot be 0"))
				}
				allErrs = append(allErrs, notMoreThan100Percent(ru.MaxUnavailable, rp.Child("maxUnavailable"))...)
			}
		}
	default:
		allErrs = append(allErrs, field.Invalid(up, spec.UpdateStrategy,
			fmt.Sprintf("must be '%s' or '%s'", appsv1.RollingUpdateStatefulSetStrategyType, appsv1.OnDeleteStatefulSetStrategyType)))
	}
	if rp := spec.PersistentVolumeClaimRetentionPolicy; rp != nil {
		pp := p.Child("persistentVolumeClaimRetentionPolicy")
		valid := []appsv1.PersistentVolumeClaimRetentionPolicyType{appsv1.DeletePersistentVolumeClaimRetentionPolicyType, appsv1.RetainPersistentVolumeClaimRetentionPolicyType}
		for _, f := range []struct {
			name string
			v    appsv1.PersistentVolumeClaimRetentionPolicyType
		}{{"whenDeleted", rp.WhenDeleted}, {"whenScaled", rp.WhenScaled}} {
			if f.v != valid[0] && f.v != valid[1] {
				allErrs = append(allErrs, field.NotSupported(pp.Child(f.name), f.v, valid))
			}
		}
	}
	if spec.Ordinals != nil {
		allErrs = append(allErrs, validateNonnegative(int64(spec.Ordinals.Start), p.Child("ordinals", "start"))...)
	}
	allErrs = append(allErrs, validateNonnegative(int64(int32Val(spec.Replicas)), p.Child("replicas"))...)
	allErrs = append(allErrs, validateNonnegative(int64(spec.MinReadySeconds), p.Child("minReadySeconds"))...)
	s, errs := validateWorkloadSelector(spec.Selector, "statefulset", p.Child("selector"))
	allErrs = append(allErrs, errs...)
	tp := p.Child("template")
	if s == nil {
		allErrs = append(allErrs, field.Invalid(p.Child("selector"), spec.Selector, ""))
	} else {
		// Upstream checks only template metadata: mounts may name
		// volumeClaimTemplates, which the pod spec does not list.
		allErrs = append(allErrs, selectorMatchesTemplate(s, &spec.Template, tp)...)
		allErrs = append(allErrs, validateLabels(spec.Template.Labels, tp.Child("labels"))...)
		allErrs = append(allErrs, validateAnnotations(spec.Template.Annotations, tp.Child("annotations"))...)
		allErrs = append(allErrs, validatePodAnnotations(spec.Template.Annotations, &spec.Template.Spec, tp.Child("annotations"))...)
	}
	if spec.Template.Spec.RestartPolicy != corev1.RestartPolicyAlways {
		allErrs = append(allErrs, field.NotSupported(tp.Child("spec", "restartPolicy"), spec.Template.Spec.RestartPolicy, []string{string(corev1.RestartPolicyAlways)}))
	}
	if spec.Template.Spec.ActiveDeadlineSeconds != nil {
		allErrs = append(allErrs, field.Invalid(tp.Child("spec", "activeDeadlineSeconds"), *spec.Template.Spec.ActiveDeadlineSeconds, "must not be specified"))
	}
	return allErrs
}

// ValidateStatefulSetUpdate validates a StatefulSet update: only a few
// spec fields may change.
func ValidateStatefulSetUpdate(ss, old *appsv1.StatefulSet) field.ErrorList {
	allErrs := ValidateStatefulSet(ss)
	allErrs = append(allErrs, ValidateObjectMetaUpdate(&ss.ObjectMeta, &old.ObjectMeta, metaPath())...)
	clone := ss.Spec.DeepCopy()
	clone.Replicas = old.Spec.Replicas
	clone.Template = old.Spec.Template
	clone.UpdateStrategy = old.Spec.UpdateStrategy
	clone.MinReadySeconds = old.Spec.MinReadySeconds
	clone.Ordinals = old.Spec.Ordinals
	clone.RevisionHistoryLimit = old.Spec.RevisionHistoryLimit
	clone.PersistentVolumeClaimRetentionPolicy = old.Spec.PersistentVolumeClaimRetentionPolicy
	if !apiequality.Semantic.DeepEqual(*clone, old.Spec) {
		allErrs = append(allErrs, field.Forbidden(field.NewPath("spec"), "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"))
	}
	return allErrs
}

// ValidateControllerRevision validates a ControllerRevision.
func ValidateControllerRevision(cr *appsv1.ControllerRevision) field.ErrorList {
	allErrs := ValidateObjectMeta(&cr.ObjectMeta, true, nameDNSSubdomain, metaPath())
	if cr.Data.Raw == nil && cr.Data.Object == nil {
		allErrs = append(allErrs, field.Required(field.NewPath("data"), "data is mandatory"))
	}
	return append(allErrs, validateNonnegative(cr.Revision, field.NewPath("revision"))...)
}

// ValidateControllerRevisionUpdate validates a ControllerRevision update;
// its data never changes.
func ValidateControllerRevisionUpdate(cr, old *appsv1.ControllerRevision) field.ErrorList {
	allErrs := ValidateObjectMetaUpdate(&cr.ObjectMeta, &old.ObjectMeta, metaPath())
	allErrs = append(allErrs, ValidateControllerRevision(cr)...)
	if string(cr.Data.Raw) != string(old.Data.Raw) {
		allErrs = append(allErrs, field.Invalid(field.NewPath("data"), cr.Data, fieldImmutableErrorMsg))
	}
	return allErrs
}
