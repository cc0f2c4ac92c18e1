package job

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Reasons and messages of upstream's Job conditions and events.
const (
	reasonCompletions  = "CompletionsReached"
	msgCompletions     = "Reached expected number of succeeded pods"
	reasonBackoffLimit = "BackoffLimitExceeded"
	msgBackoffLimit    = "Job has reached the specified backoff limit"
	reasonDeadline     = "DeadlineExceeded"
	msgDeadline        = "Job was active longer than specified deadline"
)

func condition(st *batchv1.JobStatus, t batchv1.JobConditionType) *batchv1.JobCondition {
	for i := range st.Conditions {
		if st.Conditions[i].Type == t && st.Conditions[i].Status == corev1.ConditionTrue {
			return &st.Conditions[i]
		}
	}
	return nil
}

// setCondition records a condition as true, or changes an existing one,
// keeping its transition time when the status does not change.
func setCondition(st *batchv1.JobStatus, t batchv1.JobConditionType, status corev1.ConditionStatus, reason, msg string, now time.Time) {
	ts := metav1.NewTime(now)
	for i := range st.Conditions {
		c := &st.Conditions[i]
		if c.Type != t {
			continue
		}
		if c.Status != status {
			c.LastTransitionTime = ts
		}
		c.Status, c.Reason, c.Message, c.LastProbeTime = status, reason, msg, ts
		return
	}
	st.Conditions = append(st.Conditions, batchv1.JobCondition{
		Type: t, Status: status, Reason: reason, Message: msg, LastProbeTime: ts, LastTransitionTime: ts,
	})
}

func finished(job *batchv1.Job) bool {
	return condition(&job.Status, batchv1.JobComplete) != nil || condition(&job.Status, batchv1.JobFailed) != nil
}

// finishTime is when the Job reached Complete or Failed.
func finishTime(job *batchv1.Job) (time.Time, bool) {
	if job.Status.CompletionTime != nil {
		return job.Status.CompletionTime.Time, true
	}
	for _, t := range []batchv1.JobConditionType{batchv1.JobComplete, batchv1.JobFailed} {
		if c := condition(&job.Status, t); c != nil {
			return c.LastTransitionTime.Time, true
		}
	}
	return time.Time{}, false
}

func (c *controller) writeStatus(ctx context.Context, job *batchv1.Job, st *batchv1.JobStatus) (*batchv1.Job, error) {
	if apiequality.Semantic.DeepEqual(st, &job.Status) {
		return job, nil
	}
	fresh := job.DeepCopy()
	fresh.Status = *st
	out, err := c.client.BatchV1().Jobs(job.Namespace).UpdateStatus(ctx, fresh, metav1.UpdateOptions{})
	if err != nil {
		return nil, fmt.Errorf("job %s/%s status: %w", job.Namespace, job.Name, err)
	}
	c.wrote(out)
	return out, nil
}

// expireTTL deletes a finished Job once ttlSecondsAfterFinished has passed,
// in the foreground as upstream's TTL controller does, so its pods go first.
func (c *controller) expireTTL(ctx context.Context, job *batchv1.Job) error {
	if job.Spec.TTLSecondsAfterFinished == nil || job.DeletionTimestamp != nil {
		return nil
	}
	at, ok := finishTime(job)
	if !ok {
		return nil
	}
	left := at.Add(time.Duration(*job.Spec.TTLSecondsAfterFinished) * time.Second).Sub(c.now())
	if left > 0 {
		c.ctrl.EnqueueAfter(job.Namespace+"/"+job.Name, left)
		return nil
	}
	policy := metav1.DeletePropagationForeground
	err := c.client.BatchV1().Jobs(job.Namespace).Delete(ctx, job.Name, metav1.DeleteOptions{
		PropagationPolicy: &policy,
		Preconditions:     &metav1.Preconditions{UID: &job.UID},
	})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("deleting expired job %s/%s: %w", job.Namespace, job.Name, err)
	}
	return nil
}

func isIndexed(job *batchv1.Job) bool {
	return job.Spec.CompletionMode != nil && *job.Spec.CompletionMode == batchv1.IndexedCompletion
}

// podIndex reads a pod's completion index; valid means it is one of the
// Job's indexes.
func podIndex(p *corev1.Pod, job *batchv1.Job) (int, bool) {
	v, ok := p.Annotations[batchv1.JobCompletionIndexAnnotation]
	if !ok {
		v, ok = p.Labels[batchv1.JobCompletionIndexAnnotation]
	}
	if !ok {
		return 0, false
	}
	i, err := strconv.Atoi(v)
	if err != nil || i < 0 || job.Spec.Completions == nil || i >= int(*job.Spec.Completions) {
		return 0, false
	}
	return i, true
}

// parseIndexes reads status.completedIndexes ("1,3-5,7").
func parseIndexes(s string) map[int]bool {
	out := map[int]bool{}
	for _, part := range strings.Split(s, ",") {
		if part == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			continue
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil {
				continue
			}
		}
		for i := a; i <= b; i++ {
			out[i] = true
		}
	}
	return out
}

// formatIndexes writes indexes in upstream's compressed form.
func formatIndexes(set map[int]bool) string {
	idx := make([]int, 0, len(set))
	for i := range set {
		idx = append(idx, i)
	}
	sort.Ints(idx)
	var parts []string
	for i := 0; i < len(idx); {
		j := i
		for j+1 < len(idx) && idx[j+1] == idx[j]+1 {
			j++
		}
		if j == i {
			parts = append(parts, strconv.Itoa(idx[i]))
		} else {
			parts = append(parts, fmt.Sprintf("%d-%d", idx[i], idx[j]))
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}
