package job

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/kubectl/pkg/util/podutils"
	"k8s.io/utils/ptr"
)

// Upstream's back-off before replacing failed pods.
const (
	failureBackoff    = 10 * time.Second
	maxFailureBackoff = 10 * time.Minute
)

func (c *controller) syncJob(ctx context.Context, k string, job *batchv1.Job, pods []*corev1.Pod, satisfied bool) error {
	now := c.now()
	finishing := condition(&job.Status, batchv1.JobSuccessCriteriaMet) != nil || condition(&job.Status, batchv1.JobFailureTarget) != nil
	job, err := c.track(ctx, k, job, pods, finishing)
	if err != nil {
		return err
	}
	st := job.Status.DeepCopy()
	if st.UncountedTerminatedPods == nil {
		st.UncountedTerminatedPods = &batchv1.UncountedTerminatedPods{}
	}
	var active []*corev1.Pod
	var ready, terminating int32
	for _, p := range pods {
		switch {
		case p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed:
		case p.DeletionTimestamp != nil:
			terminating++
		default:
			active = append(active, p)
			if podutils.IsPodReady(p) {
				ready++
			}
		}
	}
	unc := st.UncountedTerminatedPods
	succeeded := st.Succeeded
	if !isIndexed(job) {
		succeeded += int32(len(unc.Succeeded))
	}
	failed := st.Failed + int32(len(unc.Failed))
	suspended := ptr.Deref(job.Spec.Suspend, false)
	if st.StartTime == nil && !suspended {
		st.StartTime = &metav1.Time{Time: now}
	}
	var deadlineLeft time.Duration
	if ads := job.Spec.ActiveDeadlineSeconds; ads != nil && st.StartTime != nil {
		deadlineLeft = st.StartTime.Add(time.Duration(*ads) * time.Second).Sub(now)
		if deadlineLeft == 0 {
			deadlineLeft = -1
		}
	}
	if !finishing {
		switch {
		case failed > ptr.Deref(job.Spec.BackoffLimit, 6):
			setCondition(st, batchv1.JobFailureTarget, corev1.ConditionTrue, reasonBackoffLimit, msgBackoffLimit, now)
		case deadlineLeft < 0:
			setCondition(st, batchv1.JobFailureTarget, corev1.ConditionTrue, reasonDeadline, msgDeadline, now)
		case successReached(job, st, succeeded, len(active)):
			setCondition(st, batchv1.JobSuccessCriteriaMet, corev1.ConditionTrue, reasonCompletions, msgCompletions, now)
		}
	}
	var created, deleted int
	var manageErr error
	target := condition(st, batchv1.JobFailureTarget)
	if target == nil {
		target = condition(st, batchv1.JobSuccessCriteriaMet)
	}
	switch {
	case target != nil:
		if len(active) > 0 {
			deleted, manageErr = c.deletePods(ctx, k, job, active)
		} else if terminating == 0 && len(unc.Succeeded)+len(unc.Failed) == 0 && satisfied {
			c.finish(job, st, target, now)
		}
	case suspended:
		if len(active) > 0 {
			deleted, manageErr = c.deletePods(ctx, k, job, active)
		}
		if condition(st, batchv1.JobSuspended) == nil {
			setCondition(st, batchv1.JobSuspended, corev1.ConditionTrue, "JobSuspended", "Job suspended", now)
			c.recorder.Event(job, corev1.EventTypeNormal, "Suspended", "Job suspended")
		}
	default:
		if condition(st, batchv1.JobSuspended) != nil {
			setCondition(st, batchv1.JobSuspended, corev1.ConditionFalse, "JobResumed", "Job resumed", now)
			c.recorder.Event(job, corev1.EventTypeNormal, "Resumed", "Job resumed")
			st.StartTime = &metav1.Time{Time: now}
		}
		if satisfied {
			created, deleted, manageErr = c.manage(ctx, k, job, st, pods, active, succeeded, now)
		}
		if deadlineLeft > 0 {
			c.ctrl.EnqueueAfter(k, deadlineLeft)
		}
	}
	st.Active = int32(len(active) + created - deleted)
	st.Ready = ptr.To(ready)
	st.Terminating = ptr.To(terminating + int32(deleted))
	job, err = c.writeStatus(ctx, job, st)
	if err != nil {
		return errors.Join(err, manageErr)
	}
	if finished(job) {
		return errors.Join(manageErr, c.expireTTL(ctx, job))
	}
	return manageErr
}

// successReached is upstream's success test: every completion (or index)
// done, or, for a work-queue Job without completions, one success and
// nothing left running.
func successReached(job *batchv1.Job, st *batchv1.JobStatus, succeeded int32, active int) bool {
	if job.Spec.Completions == nil {
		return succeeded > 0 && active == 0
	}
	if isIndexed(job) {
		return int32(len(parseIndexes(st.CompletedIndexes))) >= *job.Spec.Completions
	}
	return succeeded >= *job.Spec.Completions
}

// finish turns the finish target into the final condition.
func (c *controller) finish(job *batchv1.Job, st *batchv1.JobStatus, target *batchv1.JobCondition, now time.Time) {
	if target.Type == batchv1.JobFailureTarget {
		setCondition(st, batchv1.JobFailed, corev1.ConditionTrue, target.Reason, target.Message, now)
		c.recorder.Event(job, corev1.EventTypeWarning, target.Reason, target.Message)
		return
	}
	setCondition(st, batchv1.JobComplete, corev1.ConditionTrue, target.Reason, target.Message, now)
	st.CompletionTime = &metav1.Time{Time: now}
	c.recorder.Event(job, corev1.EventTypeNormal, "Completed", "Job completed")
}

// manage brings the active pods to what parallelism and the remaining work
// call for.
func (c *controller) manage(ctx context.Context, k string, job *batchv1.Job, st *batchv1.JobStatus, pods, active []*corev1.Pod, succeeded int32, now time.Time) (created, deleted int, err error) {
	parallelism := int(ptr.Deref(job.Spec.Parallelism, 1))
	if isIndexed(job) {
		return c.manageIndexed(ctx, k, job, st, pods, active, parallelism, now)
	}
	want := parallelism
	switch {
	case job.Spec.Completions != nil:
		want = min(parallelism, int(*job.Spec.Completions-succeeded))
	case succeeded > 0:
		want = min(len(active), parallelism)
	}
	want = max(want, 0)
	if len(active) > want {
		// Not-ready and younger pods have done the least work.
		sort.SliceStable(active, func(i, j int) bool {
			if podutils.IsPodReady(active[i]) != podutils.IsPodReady(active[j]) {
				return !podutils.IsPodReady(active[i])
			}
			return active[j].CreationTimestamp.Before(&active[i].CreationTimestamp)
		})
		deleted, err = c.deletePods(ctx, k, job, active[:len(active)-want])
		return 0, deleted, err
	}
	if len(active) == want {
		return 0, 0, nil
	}
	if wait := backoffLeft(pods, now); wait > 0 {
		c.ctrl.EnqueueAfter(k, wait)
		return 0, 0, nil
	}
	indexes := make([]int, want-len(active))
	for i := range indexes {
		indexes[i] = -1
	}
	created, err = c.createPods(ctx, k, job, indexes)
	return created, 0, err
}

func (c *controller) manageIndexed(ctx context.Context, k string, job *batchv1.Job, st *batchv1.JobStatus, pods, active []*corev1.Pod, parallelism int, now time.Time) (created, deleted int, err error) {
	completed := parseIndexes(st.CompletedIndexes)
	sort.SliceStable(active, func(i, j int) bool { return active[i].CreationTimestamp.Before(&active[j].CreationTimestamp) })
	running := map[int]bool{}
	var del []*corev1.Pod
	for _, p := range active {
		idx, ok := podIndex(p, job)
		if !ok || completed[idx] || running[idx] {
			// Invalid, already done, or a duplicate of an older pod.
			del = append(del, p)
			continue
		}
		running[idx] = true
	}
	if extra := len(running) - parallelism; extra > 0 {
		idx := make([]int, 0, len(running))
		for i := range running {
			idx = append(idx, i)
		}
		sort.Sort(sort.Reverse(sort.IntSlice(idx)))
		drop := map[int]bool{}
		for _, i := range idx[:extra] {
			drop[i] = true
		}
		for _, p := range active {
			if i, ok := podIndex(p, job); ok && drop[i] {
				del = append(del, p)
			}
		}
	}
	if len(del) > 0 {
		deleted, err = c.deletePods(ctx, k, job, del)
		return 0, deleted, err
	}
	var missing []int
	for i := 0; i < int(ptr.Deref(job.Spec.Completions, 0)) && len(running)+len(missing) < parallelism; i++ {
		if !completed[i] && !running[i] {
			missing = append(missing, i)
		}
	}
	if len(missing) == 0 {
		return 0, 0, nil
	}
	if wait := backoffLeft(pods, now); wait > 0 {
		c.ctrl.EnqueueAfter(k, wait)
		return 0, 0, nil
	}
	created, err = c.createPods(ctx, k, job, missing)
	return created, 0, err
}

// backoffLeft is how long replacements must still wait: 10s doubled for
// each failure since the last success, from the last failure.
func backoffLeft(pods []*corev1.Pod, now time.Time) time.Duration {
	var lastSuccess, lastFailure time.Time
	var failures []time.Time
	for _, p := range pods {
		switch {
		case p.Status.Phase == corev1.PodSucceeded:
			if t := finishedAt(p); t.After(lastSuccess) {
				lastSuccess = t
			}
		case p.Status.Phase == corev1.PodFailed || p.DeletionTimestamp != nil:
			failures = append(failures, finishedAt(p))
		}
	}
	n := 0
	for _, t := range failures {
		if t.After(lastSuccess) {
			n++
			if t.After(lastFailure) {
				lastFailure = t
			}
		}
	}
	if n == 0 {
		return 0
	}
	delay := failureBackoff
	for i := 1; i < n && delay < maxFailureBackoff; i++ {
		delay *= 2
	}
	return lastFailure.Add(min(delay, maxFailureBackoff)).Sub(now)
}

func finishedAt(p *corev1.Pod) time.Time {
	var t time.Time
	for _, cs := range p.Status.ContainerStatuses {
		if term := cs.State.Terminated; term != nil && term.FinishedAt.After(t) {
			t = term.FinishedAt.Time
		}
	}
	if t.IsZero() && p.DeletionTimestamp != nil {
		t = p.DeletionTimestamp.Time
	}
	if t.IsZero() {
		t = p.CreationTimestamp.Time
	}
	return t
}

// newPod builds a pod from the template; index is -1 for NonIndexed Jobs.
func newPod(job *batchv1.Job, index int) *corev1.Pod {
	tmpl := job.Spec.Template.DeepCopy()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName:    job.Name + "-",
			Namespace:       job.Namespace,
			Labels:          map[string]string{},
			Annotations:     map[string]string{},
			Finalizers:      []string{trackingFinalizer},
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(job, jobKind)},
		},
		Spec: tmpl.Spec,
	}
	for k, v := range tmpl.Labels {
		pod.Labels[k] = v
	}
	for k, v := range tmpl.Annotations {
		pod.Annotations[k] = v
	}
	if index < 0 {
		return pod
	}
	s := strconv.Itoa(index)
	pod.GenerateName = fmt.Sprintf("%s-%d-", job.Name, index)
	pod.Annotations[batchv1.JobCompletionIndexAnnotation] = s
	pod.Labels[batchv1.JobCompletionIndexAnnotation] = s
	if pod.Spec.Hostname == "" {
		pod.Spec.Hostname = fmt.Sprintf("%s-%d", job.Name, index)
	}
	env := corev1.EnvVar{Name: "JOB_COMPLETION_INDEX", ValueFrom: &corev1.EnvVarSource{
		FieldRef: &corev1.ObjectFieldSelector{FieldPath: fmt.Sprintf("metadata.annotations['%s']", batchv1.JobCompletionIndexAnnotation)},
	}}
	for i := range pod.Spec.InitContainers {
		pod.Spec.InitContainers[i].Env = append(pod.Spec.InitContainers[i].Env, env)
	}
	for i := range pod.Spec.Containers {
		pod.Spec.Containers[i].Env = append(pod.Spec.Containers[i].Env, env)
	}
	return pod
}

func (c *controller) createPods(ctx context.Context, k string, job *batchv1.Job, indexes []int) (int, error) {
	c.exp.ExpectCreations(k, len(indexes))
	created := 0
	var errs []error
	for _, idx := range indexes {
		pod, err := c.client.CoreV1().Pods(job.Namespace).Create(ctx, newPod(job, idx), metav1.CreateOptions{})
		if err != nil {
			c.exp.CreationObserved(k)
			c.recorder.Eventf(job, corev1.EventTypeWarning, "FailedCreate", "Error creating: %v", err)
			errs = append(errs, fmt.Errorf("creating pod for job %s: %w", k, err))
			continue
		}
		created++
		c.recorder.Eventf(job, corev1.EventTypeNormal, "SuccessfulCreate", "Created pod: %v", pod.Name)
	}
	return created, errors.Join(errs...)
}

func (c *controller) deletePods(ctx context.Context, k string, job *batchv1.Job, pods []*corev1.Pod) (int, error) {
	keys := make([]string, 0, len(pods))
	for _, p := range pods {
		keys = append(keys, p.Namespace+"/"+p.Name)
	}
	c.exp.ExpectDeletions(k, keys)
	deleted := 0
	var errs []error
	for _, p := range pods {
		err := c.client.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{
			Preconditions: &metav1.Preconditions{UID: &p.UID},
		})
		if err != nil {
			c.exp.DeletionObserved(k, p.Namespace+"/"+p.Name)
			if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
				continue
			}
			c.recorder.Eventf(job, corev1.EventTypeWarning, "FailedDelete", "Error deleting: %v", err)
			errs = append(errs, fmt.Errorf("deleting pod %s: %w", p.Name, err))
			continue
		}
		deleted++
		c.recorder.Eventf(job, corev1.EventTypeNormal, "SuccessfulDelete", "Deleted pod: %v", p.Name)
	}
	return deleted, errors.Join(errs...)
}
