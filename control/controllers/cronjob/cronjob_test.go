package cronjob

import (
	"context"
	"fmt"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	testingclock "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	"github.com/wasmkube/wasmkube/control/controllers/framework"
	"github.com/wasmkube/wasmkube/control/controllers/job"
	"github.com/wasmkube/wasmkube/internal/simnode"
	"github.com/wasmkube/wasmkube/internal/testcluster"
)

// cluster is a real API server with simulated nodes, the CronJob
// controller on a fake clock and, optionally, the Job controller.
type cluster struct {
	cs    kubernetes.Interface
	clock *testingclock.FakeClock
	cron  *Controller
}

func startCluster(t *testing.T, withJobs bool) *cluster {
	t.Helper()
	_, cs := testcluster.Start(t)
	testcluster.StartNodes(t, cs, simnode.Options{Bind: true, Nodes: []simnode.NodeSpec{{Name: "n1"}}})
	// The clock starts long before any CronJob exists, so nothing fires
	// until the test moves it.
	c := &cluster{cs: cs, clock: testingclock.NewFakeClock(time.Unix(0, 0).UTC())}
	cc := framework.NewContext(cs, 0)
	cc.Now = c.clock.Now
	starters := map[string]framework.Starter{"cronjob": func(cc *framework.Context) (func(context.Context) error, error) {
		ctrl, err := New(cc)
		c.cron = ctrl
		if err != nil {
			return nil, err
		}
		return ctrl.Run, nil
	}}
	if withJobs {
		starters["job"] = job.Starter()
	}
	testcluster.RunControllersWith(t, cc, starters)
	return c
}

// tick moves the fake clock to t and has the CronJob synced at once.
func (c *cluster) tick(t time.Time, name string) {
	c.clock.SetTime(t)
	c.cron.Enqueue("default", name)
}

func newCronJob(name string, policy batchv1.ConcurrencyPolicy, exitCode string) *batchv1.CronJob {
	return &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: batchv1.CronJobSpec{
			Schedule:                   "* * * * *",
			TimeZone:                   ptr.To("Etc/UTC"),
			ConcurrencyPolicy:          policy,
			SuccessfulJobsHistoryLimit: ptr.To[int32](1),
			JobTemplate: batchv1.JobTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"cron": name}},
				Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{simnode.AnnotationExitCode: exitCode}},
					Spec: corev1.PodSpec{
						RestartPolicy: corev1.RestartPolicyNever,
						Containers:    []corev1.Container{{Name: "c", Image: "busybox"}},
					},
				}},
			},
		},
	}
}

// create makes the CronJob and returns the first schedule time after its
// creation.
func (c *cluster) create(ctx context.Context, t *testing.T, cj *batchv1.CronJob) time.Time {
	t.Helper()
	got, err := c.cs.BatchV1().CronJobs("default").Create(ctx, cj, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = c.cs.BatchV1().CronJobs("default").Delete(context.Background(), cj.Name, metav1.DeleteOptions{})
	})
	return got.CreationTimestamp.Time.UTC().Truncate(time.Minute).Add(time.Minute)
}

func jobNameAt(cj string, t time.Time) string { return fmt.Sprintf("%s-%d", cj, t.Unix()/60) }

func waitFor(ctx context.Context, t *testing.T, what string, f func(ctx context.Context) (bool, error)) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 15*time.Second, true, f); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func TestEveryMinuteWithFakeClock(t *testing.T) {
	c := startCluster(t, true)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	m1 := c.create(ctx, t, newCronJob("tick", batchv1.AllowConcurrent, "0"))
	started := time.Now()

	// Just before the schedule time nothing runs.
	c.tick(m1.Add(-time.Second), "tick")
	c.tick(m1.Add(time.Second), "tick")
	first := jobNameAt("tick", m1)
	var j1 *batchv1.Job
	waitFor(ctx, t, "first job", func(ctx context.Context) (bool, error) {
		var err error
		j1, err = c.cs.BatchV1().Jobs("default").Get(ctx, first, metav1.GetOptions{})
		return err == nil, nil
	})
	if got := j1.Annotations[scheduledTimestampAnnotation]; got != m1.Format(time.RFC3339) {
		t.Errorf("scheduled-timestamp annotation %q, want %q", got, m1.Format(time.RFC3339))
	}
	if ref := metav1.GetControllerOf(j1); ref == nil || ref.Kind != "CronJob" || ref.Name != "tick" {
		t.Errorf("job owner %+v, want the CronJob", ref)
	}
	if j1.Labels["cron"] != "tick" {
		t.Errorf("job labels %v lack the template's", j1.Labels)
	}
	jobs, err := c.cs.BatchV1().Jobs("default").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs.Items) != 1 {
		t.Errorf("%d jobs after the first minute, want 1", len(jobs.Items))
	}
	// The Job controller runs it; the CronJob sees it finish.
	waitFor(ctx, t, "first job completes and is recorded", func(ctx context.Context) (bool, error) {
		cj, err := c.cs.BatchV1().CronJobs("default").Get(ctx, "tick", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return len(cj.Status.Active) == 0 && cj.Status.LastSuccessfulTime != nil &&
			cj.Status.LastScheduleTime != nil && cj.Status.LastScheduleTime.Time.Equal(m1), nil
	})

	m2 := m1.Add(time.Minute)
	c.tick(m2.Add(time.Second), "tick")
	second := jobNameAt("tick", m2)
	waitFor(ctx, t, "second job", func(ctx context.Context) (bool, error) {
		_, err := c.cs.BatchV1().Jobs("default").Get(ctx, second, metav1.GetOptions{})
		return err == nil, nil
	})
	// successfulJobsHistoryLimit 1: once the second succeeds the first goes.
	waitFor(ctx, t, "first job pruned by the history limit", func(ctx context.Context) (bool, error) {
		j, err := c.cs.BatchV1().Jobs("default").Get(ctx, first, metav1.GetOptions{})
		return apierrors.IsNotFound(err) || (err == nil && j.DeletionTimestamp != nil), nil
	})
	if elapsed := time.Since(started); elapsed > 30*time.Second {
		t.Errorf("two minutes of schedule took %s of real time", elapsed)
	}
	testcluster.WaitEvent(ctx, t, c.cs, "tick", "SuccessfulCreate", "Created job "+first)
	testcluster.WaitEvent(ctx, t, c.cs, "tick", "SawCompletedJob", "Saw completed job: "+first+", condition: Complete")
}

func TestForbidSkipsWhileRunning(t *testing.T) {
	// No Job controller: the first Job never finishes, so it stays active.
	c := startCluster(t, false)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	m1 := c.create(ctx, t, newCronJob("solo", batchv1.ForbidConcurrent, "0"))
	c.tick(m1.Add(time.Second), "solo")
	waitFor(ctx, t, "first job active", func(ctx context.Context) (bool, error) {
		cj, err := c.cs.BatchV1().CronJobs("default").Get(ctx, "solo", metav1.GetOptions{})
		return err == nil && len(cj.Status.Active) == 1 && cj.Status.Active[0].Name == jobNameAt("solo", m1), nil
	})
	m2 := m1.Add(time.Minute)
	c.tick(m2.Add(time.Second), "solo")
	testcluster.WaitEvent(ctx, t, c.cs, "solo", "JobAlreadyActive", "Not starting job because prior execution is running and concurrency policy is Forbid")
	if _, err := c.cs.BatchV1().Jobs("default").Get(ctx, jobNameAt("solo", m2), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("job for the second minute: %v, want NotFound under Forbid", err)
	}
	jobs, err := c.cs.BatchV1().Jobs("default").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs.Items) != 1 {
		t.Errorf("%d jobs, want 1", len(jobs.Items))
	}
	cj, err := c.cs.BatchV1().CronJobs("default").Get(ctx, "solo", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !cj.Status.LastScheduleTime.Time.Equal(m1) {
		t.Errorf("lastScheduleTime %v, want %v (the skipped run is not recorded)", cj.Status.LastScheduleTime, m1)
	}

	// Replace instead: the running Job is deleted and the new one starts.
	cj.Spec.ConcurrencyPolicy = batchv1.ReplaceConcurrent
	if _, err := c.cs.BatchV1().CronJobs("default").Update(ctx, cj, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	m3 := m2.Add(time.Minute)
	c.tick(m3.Add(time.Second), "solo")
	waitFor(ctx, t, "replacement job", func(ctx context.Context) (bool, error) {
		cj, err := c.cs.BatchV1().CronJobs("default").Get(ctx, "solo", metav1.GetOptions{})
		return err == nil && len(cj.Status.Active) == 1 && cj.Status.Active[0].Name == jobNameAt("solo", m3), nil
	})
	waitFor(ctx, t, "replaced job deleted", func(ctx context.Context) (bool, error) {
		j, err := c.cs.BatchV1().Jobs("default").Get(ctx, jobNameAt("solo", m1), metav1.GetOptions{})
		return apierrors.IsNotFound(err) || (err == nil && j.DeletionTimestamp != nil), nil
	})
}

func TestMissedSchedules(t *testing.T) {
	c := startCluster(t, false)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cj := newCronJob("late", batchv1.AllowConcurrent, "0")
	cj.Spec.StartingDeadlineSeconds = ptr.To[int64](10)
	m1 := c.create(ctx, t, cj)
	// 30s after the schedule time is past the 10s deadline: that run is
	// skipped, and the next minute, on time, runs.
	c.tick(m1.Add(30*time.Second), "late")
	m2 := m1.Add(time.Minute)
	c.tick(m2.Add(2*time.Second), "late")
	waitFor(ctx, t, "on-time job", func(ctx context.Context) (bool, error) {
		_, err := c.cs.BatchV1().Jobs("default").Get(ctx, jobNameAt("late", m2), metav1.GetOptions{})
		return err == nil, nil
	})
	jobs, err := c.cs.BatchV1().Jobs("default").List(ctx, metav1.ListOptions{LabelSelector: "cron=late"})
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs.Items) != 1 {
		t.Errorf("%d jobs, want only the on-time one", len(jobs.Items))
	}

	// Without a deadline, 200 missed minutes run once, for the latest,
	// with upstream's warning.
	// The fake clock is minutes ahead of the API server's after the first
	// part; bring it back first, or the sync that the creation itself
	// triggers would already find missed runs and race the tick below.
	c.clock.SetTime(time.Now())
	b1 := c.create(ctx, t, newCronJob("burst", batchv1.AllowConcurrent, "0"))
	latest := b1.Add(200 * time.Minute)
	c.tick(latest.Add(time.Second), "burst")
	waitFor(ctx, t, "job for the latest missed time", func(ctx context.Context) (bool, error) {
		_, err := c.cs.BatchV1().Jobs("default").Get(ctx, jobNameAt("burst", latest), metav1.GetOptions{})
		return err == nil, nil
	})
	testcluster.WaitEvent(ctx, t, c.cs, "burst", "TooManyMissedTimes", "too many missed start times: 201. Set or decrease .spec.startingDeadlineSeconds or check clock skew")
	jobs, err = c.cs.BatchV1().Jobs("default").List(ctx, metav1.ListOptions{LabelSelector: "cron=burst"})
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs.Items) != 1 {
		t.Errorf("%d burst jobs, want 1", len(jobs.Items))
	}
}
