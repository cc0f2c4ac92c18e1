package printers

import (
	"fmt"

	batchv1 "k8s.io/api/batch/v1"
	batchv1beta1 "k8s.io/api/batch/v1beta1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/duration"
)

var (
	jobColumns = []metav1.TableColumnDefinition{
		nameColumn,
		{Name: "Status", Type: "string", Description: "Status of the job."},
		{Name: "Completions", Type: "string", Description: batchv1.JobStatus{}.SwaggerDoc()["succeeded"]},
		{Name: "Duration", Type: "string", Description: "Time required to complete the job."},
		ageColumn,
		containersColumn,
		imagesColumn,
		{Name: "Selector", Type: "string", Priority: 1, Description: batchv1.JobSpec{}.SwaggerDoc()["selector"]},
	}
	// Upstream still describes CronJob columns with the batch/v1beta1 docs.
	cronJobColumns = []metav1.TableColumnDefinition{
		nameColumn,
		{Name: "Schedule", Type: "string", Description: batchv1beta1.CronJobSpec{}.SwaggerDoc()["schedule"]},
		{Name: "Timezone", Type: "string", Description: batchv1beta1.CronJobSpec{}.SwaggerDoc()["timeZone"]},
		{Name: "Suspend", Type: "boolean", Description: batchv1beta1.CronJobSpec{}.SwaggerDoc()["suspend"]},
		{Name: "Active", Type: "integer", Description: batchv1beta1.CronJobStatus{}.SwaggerDoc()["active"]},
		{Name: "Last Schedule", Type: "string", Description: batchv1beta1.CronJobStatus{}.SwaggerDoc()["lastScheduleTime"]},
		ageColumn,
		containersColumn,
		imagesColumn,
		{Name: "Selector", Type: "string", Priority: 1, Description: batchv1.JobSpec{}.SwaggerDoc()["selector"]},
	}
)

func (p *Printers) batchTable(obj runtime.Object) ([]metav1.TableColumnDefinition, []metav1.TableRow, bool, error) {
	switch o := obj.(type) {
	case *batchv1.Job:
		return jobColumns, one(p.jobRow(o)), true, nil
	case *batchv1.JobList:
		return jobColumns, eachRow(o.Items, p.jobRow), true, nil
	case *batchv1.CronJob:
		return cronJobColumns, one(p.cronJobRow(o)), true, nil
	case *batchv1.CronJobList:
		return cronJobColumns, eachRow(o.Items, p.cronJobRow), true, nil
	}
	return nil, nil, false, nil
}

// jobConditionTrue looks only at the first condition of the given type.
func jobConditionTrue(conds []batchv1.JobCondition, t batchv1.JobConditionType) bool {
	for _, c := range conds {
		if c.Type == t {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func jobStatus(j *batchv1.Job) string {
	conds := j.Status.Conditions
	// Terminal conditions outrank deletion, which outranks transient ones.
	switch {
	case jobConditionTrue(conds, batchv1.JobComplete):
		return "Complete"
	case jobConditionTrue(conds, batchv1.JobFailed):
		return "Failed"
	case j.DeletionTimestamp != nil:
		return "Terminating"
	case jobConditionTrue(conds, batchv1.JobSuspended):
		return "Suspended"
	case jobConditionTrue(conds, batchv1.JobFailureTarget):
		return "FailureTarget"
	}
	return "Running"
}

func (p *Printers) jobRow(j *batchv1.Job) metav1.TableRow {
	var completions string
	switch {
	case j.Spec.Completions != nil:
		completions = fmt.Sprintf("%d/%d", j.Status.Succeeded, *j.Spec.Completions)
	case j.Spec.Parallelism != nil && *j.Spec.Parallelism > 1:
		// A work-queue job finishes after one success, however many pods run.
		completions = fmt.Sprintf("%d/1 of %d", j.Status.Succeeded, *j.Spec.Parallelism)
	default:
		completions = fmt.Sprintf("%d/1", j.Status.Succeeded)
	}

	var jobDuration string
	switch {
	case j.Status.StartTime == nil:
	case j.Status.CompletionTime == nil:
		jobDuration = duration.HumanDuration(p.now().Sub(j.Status.StartTime.Time))
	default:
		jobDuration = duration.HumanDuration(j.Status.CompletionTime.Sub(j.Status.StartTime.Time))
	}

	names, images := containerCells(j.Spec.Template.Spec.Containers)
	return cells(
		j.Name,
		jobStatus(j),
		completions,
		jobDuration,
		p.since(j.CreationTimestamp),
		names,
		images,
		metav1.FormatLabelSelector(j.Spec.Selector),
	)
}

func (p *Printers) cronJobRow(cj *batchv1.CronJob) metav1.TableRow {
	lastSchedule := "<none>"
	if cj.Status.LastScheduleTime != nil {
		lastSchedule = p.since(*cj.Status.LastScheduleTime)
	}
	timeZone := "<none>"
	if cj.Spec.TimeZone != nil {
		timeZone = *cj.Spec.TimeZone
	}
	suspend := cj.Spec.Suspend
	if suspend == nil {
		suspend = new(bool) // v1 defaulting: not suspended
	}
	names, images := containerCells(cj.Spec.JobTemplate.Spec.Template.Spec.Containers)
	return cells(
		cj.Name,
		cj.Spec.Schedule,
		timeZone,
		boolPtrString(suspend),
		int64(len(cj.Status.Active)),
		lastSchedule,
		p.since(cj.CreationTimestamp),
		names,
		images,
		metav1.FormatLabelSelector(cj.Spec.JobTemplate.Spec.Selector),
	)
}
