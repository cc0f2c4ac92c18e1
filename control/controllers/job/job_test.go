package job

import (
	"context"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/wasmkube/wasmkube/control/controllers/framework"
	"github.com/wasmkube/wasmkube/internal/simnode"
	"github.com/wasmkube/wasmkube/internal/testcluster"
)

// startCluster runs a real API server, two simulated nodes that bind and
// run pods, and the Job controller.
func startCluster(t *testing.T) kubernetes.Interface {
	t.Helper()
	_, cs := testcluster.Start(t)
	testcluster.StartNodes(t, cs, simnode.Options{Bind: true, Nodes: []simnode.NodeSpec{{Name: "n1"}, {Name: "n2"}}})
	testcluster.RunControllers(t, cs, map[string]framework.Starter{"job": Starter()})
	return cs
}

func newJob(name string, completions, parallelism int32, exitCode string) *batchv1.Job {
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: batchv1.JobSpec{
			Completions: ptr.To(completions),
			Parallelism: ptr.To(parallelism),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{
					simnode.AnnotationExitCode: exitCode,
					simnode.AnnotationRunFor:   "300ms",
				}},
				Spec: corev1.PodSpec{
					RestartPolicy: corev1.RestartPolicyNever,
					Containers:    []corev1.Container{{Name: "c", Image: "busybox"}},
				},
			},
		},
	}
}

// activeWatcher records the largest number of pods of a Job running at
// once, and every pod UID it saw.
type activeWatcher struct {
	mu      sync.Mutex
	running map[types.UID]bool
	seen    map[types.UID]bool
	peak    int
}

func watchActive(t *testing.T, cs kubernetes.Interface, job string) *activeWatcher {
	t.Helper()
	w, err := cs.CoreV1().Pods("default").Watch(context.Background(), metav1.ListOptions{LabelSelector: batchv1.JobNameLabel + "=" + job})
	if err != nil {
		t.Fatal(err)
	}
	a := &activeWatcher{running: map[types.UID]bool{}, seen: map[types.UID]bool{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range w.ResultChan() {
			p, ok := ev.Object.(*corev1.Pod)
			if !ok {
				continue
			}
			a.mu.Lock()
			a.seen[p.UID] = true
			if ev.Type == watch.Deleted || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
				delete(a.running, p.UID)
			} else {
				a.running[p.UID] = true
			}
			a.peak = max(a.peak, len(a.running))
			a.mu.Unlock()
		}
	}()
	t.Cleanup(func() { w.Stop(); <-done })
	return a
}

func waitJob(ctx context.Context, t *testing.T, cs kubernetes.Interface, name string, ok func(*batchv1.Job) bool) *batchv1.Job {
	t.Helper()
	var last *batchv1.Job
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		got, err := cs.BatchV1().Jobs("default").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		last = got
		return ok(got), nil
	})
	if err != nil {
		t.Fatalf("job %s: status %+v: %v", name, last.Status, err)
	}
	return last
}

func hasCondition(j *batchv1.Job, t batchv1.JobConditionType, reason, msg string) bool {
	for _, c := range j.Status.Conditions {
		if c.Type == t && c.Status == corev1.ConditionTrue && c.Reason == reason && c.Message == msg {
			return true
		}
	}
	return false
}

func TestJobRunsToCompletion(t *testing.T) {
	cs := startCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	watcher := watchActive(t, cs, "pi")
	job, err := cs.BatchV1().Jobs("default").Create(ctx, newJob("pi", 3, 2, "0"), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cs.BatchV1().Jobs("default").Delete(context.Background(), "pi", metav1.DeleteOptions{})
	})
	done := waitJob(ctx, t, cs, "pi", func(j *batchv1.Job) bool {
		return hasCondition(j, batchv1.JobComplete, "CompletionsReached", "Reached expected number of succeeded pods")
	})
	if !hasCondition(done, batchv1.JobSuccessCriteriaMet, "CompletionsReached", "Reached expected number of succeeded pods") {
		t.Errorf("conditions %+v lack SuccessCriteriaMet", done.Status.Conditions)
	}
	st := done.Status
	if st.Succeeded != 3 || st.Failed != 0 || st.Active != 0 || st.StartTime == nil || st.CompletionTime == nil {
		t.Errorf("status = %+v, want succeeded 3, failed 0, active 0, start and completion times", st)
	}
	if u := st.UncountedTerminatedPods; u != nil && len(u.Succeeded)+len(u.Failed) > 0 {
		t.Errorf("uncounted pods left: %+v", u)
	}
	pods, err := cs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: batchv1.ControllerUidLabel + "=" + string(job.UID)})
	if err != nil {
		t.Fatal(err)
	}
	if len(pods.Items) != 3 {
		t.Errorf("%d pods, want exactly 3", len(pods.Items))
	}
	name := regexp.MustCompile(`^pi-[a-z0-9]{5}$`)
	for _, p := range pods.Items {
		if !name.MatchString(p.Name) || p.Labels[batchv1.JobNameLabel] != "pi" {
			t.Errorf("pod %s labels %v: want name pi-xxxxx and job-name pi", p.Name, p.Labels)
		}
		if ref := metav1.GetControllerOf(&p); ref == nil || ref.UID != job.UID || !ptr.Deref(ref.BlockOwnerDeletion, false) {
			t.Errorf("pod %s controller ref %+v", p.Name, ref)
		}
	}
	// Every finalizer comes off once the pods are counted.
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		pods, err := cs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: batchv1.JobNameLabel + "=pi"})
		if err != nil {
			return false, err
		}
		for _, p := range pods.Items {
			if slices.Contains(p.Finalizers, batchv1.JobTrackingFinalizer) {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		t.Errorf("tracking finalizers not removed: %v", err)
	}
	watcher.mu.Lock()
	peak, seen := watcher.peak, len(watcher.seen)
	watcher.mu.Unlock()
	if peak > 2 || peak == 0 {
		t.Errorf("peak running pods = %d, want 1..2 (parallelism 2)", peak)
	}
	if seen != 3 {
		t.Errorf("saw %d pods, want 3", seen)
	}
	testcluster.WaitEvent(ctx, t, cs, "pi", "SuccessfulCreate", "Created pod: pi-")
	testcluster.WaitEvent(ctx, t, cs, "pi", "Completed", "Job completed")
}

func TestJobBackoffLimitExceeded(t *testing.T) {
	cs := startCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	j := newJob("fail", 2, 2, "1")
	j.Spec.BackoffLimit = ptr.To[int32](1)
	if _, err := cs.BatchV1().Jobs("default").Create(ctx, j, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cs.BatchV1().Jobs("default").Delete(context.Background(), "fail", metav1.DeleteOptions{})
	})
	done := waitJob(ctx, t, cs, "fail", func(j *batchv1.Job) bool {
		return hasCondition(j, batchv1.JobFailed, "BackoffLimitExceeded", "Job has reached the specified backoff limit")
	})
	if !hasCondition(done, batchv1.JobFailureTarget, "BackoffLimitExceeded", "Job has reached the specified backoff limit") {
		t.Errorf("conditions %+v lack FailureTarget", done.Status.Conditions)
	}
	if done.Status.Failed != 2 || done.Status.Succeeded != 0 || done.Status.Active != 0 || done.Status.CompletionTime != nil {
		t.Errorf("status = %+v, want failed 2, no success, nothing active, no completion time", done.Status)
	}
	testcluster.WaitEvent(ctx, t, cs, "fail", "BackoffLimitExceeded", "Job has reached the specified backoff limit")
}

func TestIndexedJobThenTTL(t *testing.T) {
	cs := startCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	j := newJob("idx", 3, 3, "0")
	j.Spec.CompletionMode = ptr.To(batchv1.IndexedCompletion)
	j.Spec.TTLSecondsAfterFinished = ptr.To[int32](2)
	if _, err := cs.BatchV1().Jobs("default").Create(ctx, j, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cs.BatchV1().Jobs("default").Delete(context.Background(), "idx", metav1.DeleteOptions{})
	})
	done := waitJob(ctx, t, cs, "idx", func(j *batchv1.Job) bool {
		return hasCondition(j, batchv1.JobComplete, "CompletionsReached", "Reached expected number of succeeded pods")
	})
	if done.Status.CompletedIndexes != "0-2" || done.Status.Succeeded != 3 {
		t.Errorf("completedIndexes %q succeeded %d, want 0-2 and 3", done.Status.CompletedIndexes, done.Status.Succeeded)
	}
	pods, err := cs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: batchv1.JobNameLabel + "=idx"})
	if err != nil {
		t.Fatal(err)
	}
	indexes := map[string]bool{}
	for _, p := range pods.Items {
		idx := p.Annotations[batchv1.JobCompletionIndexAnnotation]
		indexes[idx] = true
		if p.Labels[batchv1.JobCompletionIndexAnnotation] != idx || p.Spec.Hostname != "idx-"+idx ||
			!strings.HasPrefix(p.Name, "idx-"+idx+"-") {
			t.Errorf("pod %s index %q label %q hostname %q", p.Name, idx, p.Labels[batchv1.JobCompletionIndexAnnotation], p.Spec.Hostname)
		}
		if env := p.Spec.Containers[0].Env; len(env) == 0 || env[len(env)-1].Name != "JOB_COMPLETION_INDEX" {
			t.Errorf("pod %s env %+v lacks JOB_COMPLETION_INDEX", p.Name, env)
		}
	}
	if len(pods.Items) != 3 || !indexes["0"] || !indexes["1"] || !indexes["2"] {
		t.Errorf("pods %d with indexes %v, want one each of 0, 1, 2", len(pods.Items), indexes)
	}
	// ttlSecondsAfterFinished: the Job is deleted (in the foreground, so
	// without a garbage collector it may linger with a deletionTimestamp).
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 20*time.Second, true, func(ctx context.Context) (bool, error) {
		got, err := cs.BatchV1().Jobs("default").Get(ctx, "idx", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		if err != nil {
			return false, err
		}
		return got.DeletionTimestamp != nil, nil
	})
	if err != nil {
		t.Errorf("job not deleted after its TTL: %v", err)
	}
}
