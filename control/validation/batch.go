package validation

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// ValidateJob validates a Job on create.
func ValidateJob(job *batchv1.Job) field.ErrorList {
	allErrs := ValidateObjectMeta(&job.ObjectMeta, true, nameDNSSubdomain, metaPath())
	return append(allErrs, validateJobSpec(&job.Spec, field.NewPath("spec"), true)...)
}

// validateJobSpec checks a job spec. Jobs without manualSelector get their
// selector generated from the UID (see control/defaults), so a missing one
// is only an error when the user asked to manage it.
func validateJobSpec(spec *batchv1.JobSpec, p *field.Path, isJob bool) field.ErrorList {
	var allErrs field.ErrorList
	if spec.Parallelism != nil {
		allErrs = append(allErrs, validateNonnegative(int64(*spec.Parallelism), p.Child("parallelism"))...)
	}
	if spec.Completions != nil {
		allErrs = append(allErrs, validateNonnegative(int64(*spec.Completions), p.Child("completions"))...)
	}
	if spec.ActiveDeadlineSeconds != nil {
		allErrs = append(allErrs, validateNonnegative(*spec.ActiveDeadlineSeconds, p.Child("activeDeadlineSeconds"))...)
	}
	if spec.BackoffLimit != nil {
		allErrs = append(allErrs, validateNonnegative(int64(*spec.BackoffLimit), p.Child("backoffLimit"))...)
	}
	if spec.TTLSecondsAfterFinished != nil {
		allErrs = append(allErrs, validateNonnegative(int64(*spec.TTLSecondsAfterFinished), p.Child("ttlSecondsAfterFinished"))...)
	}
	if spec.CompletionMode != nil {
		switch *spec.CompletionMode {
		case batchv1.NonIndexedCompletion:
		case batchv1.IndexedCompletion:
			if spec.Completions == nil {
				allErrs = append(allErrs, field.Required(p.Child("completions"), fmt.Sprintf("when completion mode is %s", batchv1.IndexedCompletion)))
			}
		default:
			allErrs = append(allErrs, field.NotSupported(p.Child("completionMode"), *spec.CompletionMode,
				[]batchv1.CompletionMode{batchv1.NonIndexedCompletion, batchv1.IndexedCompletion}))
		}
	}
	if prp := spec.PodReplacementPolicy; prp != nil && *prp != batchv1.TerminatingOrFailed && *prp != batchv1.Failed {
		allErrs = append(allErrs, field.NotSupported(p.Child("podReplacementPolicy"), *prp,
			[]batchv1.PodReplacementPolicy{batchv1.Failed, batchv1.TerminatingOrFailed}))
	}
	if spec.Selector != nil {
		allErrs = append(allErrs, validateLabelSelector(spec.Selector, p.Child("selector"))...)
		if s, err := metav1.LabelSelectorAsSelector(spec.Selector); err == nil && !s.Matches(labels.Set(spec.Template.Labels)) {
			allErrs = append(allErrs, field.Invalid(p.Child("template", "metadata", "labels"), spec.Template.Labels, "`selector` does not match template `labels`"))
		}
	} else if isJob && spec.ManualSelector != nil && *spec.ManualSelector {
		allErrs = append(allErrs, field.Required(p.Child("selector"), ""))
	}
	tp := p.Child("template")
	allErrs = append(allErrs, ValidatePodTemplateSpec(&spec.Template, tp)...)
	if rp := spec.Template.Spec.RestartPolicy; rp != corev1.RestartPolicyOnFailure && rp != corev1.RestartPolicyNever {
		allErrs = append(allErrs, field.NotSupported(tp.Child("spec", "restartPolicy"), rp,
			[]corev1.RestartPolicy{corev1.RestartPolicyOnFailure, corev1.RestartPolicyNever}))
	}
	return allErrs
}

// ValidateJobUpdate validates a Job update: selector, completions, mode
// and (unless the job is suspended and never started) the template are
// immutable.
func ValidateJobUpdate(job, old *batchv1.Job) field.ErrorList {
	allErrs := ValidateObjectMetaUpdate(&job.ObjectMeta, &old.ObjectMeta, metaPath())
	allErrs = append(allErrs, validateJobSpec(&job.Spec, field.NewPath("spec"), true)...)
	p := field.NewPath("spec")
	allErrs = append(allErrs, validateImmutable(job.Spec.Selector, old.Spec.Selector, p.Child("selector"))...)
	allErrs = append(allErrs, validateImmutable(job.Spec.CompletionMode, old.Spec.CompletionMode, p.Child("completionMode"))...)
	if job.Spec.CompletionMode == nil || *job.Spec.CompletionMode != batchv1.IndexedCompletion {
		allErrs = append(allErrs, validateImmutable(job.Spec.Completions, old.Spec.Completions, p.Child("completions"))...)
	}
	tmpl := job.Spec.Template.DeepCopy()
	// Scheduling directives of a suspended, never started job may change.
	if old.Spec.Suspend != nil && *old.Spec.Suspend && old.Status.StartTime == nil {
		tmpl.Spec.NodeSelector = old.Spec.Template.Spec.NodeSelector
		tmpl.Spec.Tolerations = old.Spec.Template.Spec.Tolerations
		tmpl.Spec.Affinity = old.Spec.Template.Spec.Affinity
		tmpl.Spec.SchedulingGates = old.Spec.Template.Spec.SchedulingGates
		tmpl.Labels = old.Spec.Template.Labels
		tmpl.Annotations = old.Spec.Template.Annotations
	}
	if !apiequality.Semantic.DeepEqual(*tmpl, old.Spec.Template) {
		allErrs = append(allErrs, field.Invalid(p.Child("template"), job.Spec.Template, fieldImmutableErrorMsg))
	}
	return allErrs
}

// ValidateCronJob validates a CronJob on create.
func ValidateCronJob(cj *batchv1.CronJob) field.ErrorList {
	allErrs := ValidateObjectMeta(&cj.ObjectMeta, true, nameDNSSubdomain, metaPath())
	// Job names get an 11 character suffix and must stay DNS labels.
	if len(cj.Name) > 52 {
		allErrs = append(allErrs, field.Invalid(metaPath().Child("name"), cj.Name, "must be no more than 52 characters"))
	}
	return append(allErrs, validateCronJobSpec(&cj.Spec, field.NewPath("spec"))...)
}

func validateCronJobSpec(spec *batchv1.CronJobSpec, p *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if spec.Schedule == "" {
		allErrs = append(allErrs, field.Required(p.Child("schedule"), ""))
	} else {
		allErrs = append(allErrs, validateSchedule(spec.Schedule, p.Child("schedule"))...)
	}
	if spec.TimeZone != nil {
		if *spec.TimeZone == "" {
			allErrs = append(allErrs, field.Invalid(p.Child("timeZone"), *spec.TimeZone, "unknown time zone "+*spec.TimeZone))
		} else if _, err := time.LoadLocation(*spec.TimeZone); err != nil {
			allErrs = append(allErrs, field.Invalid(p.Child("timeZone"), *spec.TimeZone, err.Error()))
		}
	}
	if spec.StartingDeadlineSeconds != nil {
		allErrs = append(allErrs, validateNonnegative(*spec.StartingDeadlineSeconds, p.Child("startingDeadlineSeconds"))...)
	}
	allErrs = append(allErrs, validateEnum(string(spec.ConcurrencyPolicy), p.Child("concurrencyPolicy"),
		string(batchv1.AllowConcurrent), string(batchv1.ForbidConcurrent), string(batchv1.ReplaceConcurrent))...)
	if spec.SuccessfulJobsHistoryLimit != nil {
		allErrs = append(allErrs, validateNonnegative(int64(*spec.SuccessfulJobsHistoryLimit), p.Child("successfulJobsHistoryLimit"))...)
	}
	if spec.FailedJobsHistoryLimit != nil {
		allErrs = append(allErrs, validateNonnegative(int64(*spec.FailedJobsHistoryLimit), p.Child("failedJobsHistoryLimit"))...)
	}
	jp := p.Child("jobTemplate")
	allErrs = append(allErrs, validateLabels(spec.JobTemplate.Labels, jp.Child("metadata", "labels"))...)
	allErrs = append(allErrs, validateAnnotations(spec.JobTemplate.Annotations, jp.Child("metadata", "annotations"))...)
	return append(allErrs, validateJobSpec(&spec.JobTemplate.Spec, jp.Child("spec"), false)...)
}

// cronFieldRanges bound minute, hour, day of month, month and day of week.
var cronFieldRanges = [5][2]int{{0, 59}, {0, 23}, {1, 31}, {1, 12}, {0, 7}}

var cronNames = map[string]int{
	"jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6, "jul": 7, "aug": 8, "sep": 9, "oct": 10, "nov": 11, "dec": 12,
	"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6,
}

// validateSchedule accepts standard five-field cron expressions and the
// @-descriptors. The error texts are ours; upstream relays its cron
// parser's.
func validateSchedule(schedule string, p *field.Path) field.ErrorList {
	if strings.Contains(schedule, "TZ") {
		return field.ErrorList{field.Invalid(p, schedule, "cannot use TZ or CRON_TZ in schedule, use timeZone field instead")}
	}
	if err := parseCron(schedule); err != nil {
		return field.ErrorList{field.Invalid(p, schedule, err.Error())}
	}
	return nil
}

func parseCron(s string) error {
	if strings.HasPrefix(s, "@") {
		switch s {
		case "@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly":
			return nil
		}
		if strings.HasPrefix(s, "@every ") {
			_, err := time.ParseDuration(strings.TrimPrefix(s, "@every "))
			return err
		}
		return fmt.Errorf("unrecognized descriptor: %s", s)
	}
	fields := strings.Fields(s)
	if len(fields) != 5 {
		return fmt.Errorf("expected exactly 5 fields, found %d: %s", len(fields), s)
	}
	for i, f := range fields {
		for _, part := range strings.Split(f, ",") {
			if err := parseCronRange(part, cronFieldRanges[i]); err != nil {
				return err
			}
		}
	}
	return nil
}

func parseCronRange(expr string, bounds [2]int) error {
	rangeAndStep := strings.SplitN(expr, "/", 2)
	if len(rangeAndStep) == 2 {
		if step, err := strconv.Atoi(rangeAndStep[1]); err != nil || step <= 0 {
			return fmt.Errorf("failed to parse int from %s", rangeAndStep[1])
		}
	}
	r := rangeAndStep[0]
	if r == "*" || r == "?" {
		return nil
	}
	for _, v := range strings.SplitN(r, "-", 2) {
		n, ok := cronNames[strings.ToLower(v)]
		if !ok {
			var err error
			if n, err = strconv.Atoi(v); err != nil {
				return fmt.Errorf("failed to parse int from %s: %v", v, err)
			}
		}
		if n < bounds[0] || n > bounds[1] {
			return fmt.Errorf("end of range (%d) above maximum (%d): %s", n, bounds[1], expr)
		}
	}
	return nil
}

// ValidateCronJobUpdate validates a CronJob update.
func ValidateCronJobUpdate(cj, old *batchv1.CronJob) field.ErrorList {
	allErrs := ValidateObjectMetaUpdate(&cj.ObjectMeta, &old.ObjectMeta, metaPath())
	return append(allErrs, validateCronJobSpec(&cj.Spec, field.NewPath("spec"))...)
}
