package cronjob

import (
	"context"
	"fmt"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	batchlisters "k8s.io/client-go/listers/batch/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/wasmkube/wasmkube/control/controllers/framework"
	"github.com/wasmkube/wasmkube/control/controllers/tombstone"
)

// Name is the controller's name and event source.
const Name = "cronjob-controller"

var cronJobKind = batchv1.SchemeGroupVersion.WithKind("CronJob")

// Controller is the CronJob controller. It is exported, unlike the other
// controllers, so that tests driving a fake clock can enqueue a CronJob
// after advancing the clock.
type Controller struct {
	client   kubernetes.Interface
	cronJobs batchlisters.CronJobLister
	jobs     batchlisters.JobLister
	ctrl     *framework.Controller
	recorder record.EventRecorder
	now      func() time.Time
	synced   []cache.InformerSynced
}

// Starter runs the CronJob controller with two workers.
func Starter() framework.Starter {
	return func(cc *framework.Context) (func(context.Context) error, error) {
		c, err := New(cc)
		if err != nil {
			return nil, err
		}
		return c.Run, nil
	}
}

// New registers the controller's informers; Run starts it.
func New(cc *framework.Context) (*Controller, error) {
	cjInf := cc.Informers.Batch().V1().CronJobs()
	jobInf := cc.Informers.Batch().V1().Jobs()
	c := &Controller{
		client: cc.Client, cronJobs: cjInf.Lister(), jobs: jobInf.Lister(),
		recorder: cc.Recorder(Name), now: cc.Now,
		synced: []cache.InformerSynced{cjInf.Informer().HasSynced, jobInf.Informer().HasSynced},
	}
	c.ctrl = framework.New(Name, c.sync)
	if _, err := cjInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.ctrl.Enqueue,
		UpdateFunc: func(_, obj any) { c.ctrl.Enqueue(obj) },
	}); err != nil {
		return nil, fmt.Errorf("cronjob handler: %w", err)
	}
	if _, err := jobInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.enqueueOwner,
		UpdateFunc: func(_, obj any) { c.enqueueOwner(obj) },
		DeleteFunc: c.enqueueOwner,
	}); err != nil {
		return nil, fmt.Errorf("job handler: %w", err)
	}
	return c, nil
}

// Run processes CronJobs until ctx ends.
func (c *Controller) Run(ctx context.Context) error { return c.ctrl.Run(ctx, 2, c.synced...) }

// Enqueue asks for a sync of one CronJob now.
func (c *Controller) Enqueue(namespace, name string) { c.ctrl.EnqueueKey(namespace + "/" + name) }

func (c *Controller) enqueueOwner(obj any) {
	job, ok := tombstone.Unwrap[*batchv1.Job](obj)
	if !ok {
		return
	}
	if ref := metav1.GetControllerOf(job); ref != nil && ref.Kind == cronJobKind.Kind {
		c.Enqueue(job.Namespace, ref.Name)
	}
}

// jobFinished returns the Job's final condition type, if it has one.
func jobFinished(j *batchv1.Job) (batchv1.JobConditionType, bool) {
	for _, cond := range j.Status.Conditions {
		if (cond.Type == batchv1.JobComplete || cond.Type == batchv1.JobFailed) && cond.Status == corev1.ConditionTrue {
			return cond.Type, true
		}
	}
	return "", false
}

func (c *Controller) sync(ctx context.Context, k string) error {
	namespace, name, err := cache.SplitMetaNamespaceKey(k)
	if err != nil {
		return fmt.Errorf("bad key %q: %w", k, err)
	}
	cached, err := c.cronJobs.CronJobs(namespace).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cronjob %s: %w", k, err)
	}
	all, err := c.jobs.Jobs(namespace).List(labels.Everything())
	if err != nil {
		return fmt.Errorf("listing jobs: %w", err)
	}
	var jobs []*batchv1.Job
	for _, j := range all {
		if metav1.IsControlledBy(j, cached) {
			jobs = append(jobs, j)
		}
	}
	cj := cached.DeepCopy()
	requeue, syncErr := c.syncCronJob(ctx, cj, jobs)
	if err := c.cleanupHistory(ctx, cj, jobs); err != nil {
		syncErr = err
	}
	if err := c.writeStatus(ctx, cached, cj); err != nil {
		return err
	}
	if syncErr != nil {
		return syncErr
	}
	if requeue > 0 {
		c.ctrl.EnqueueAfter(k, requeue)
	}
	return nil
}

func (c *Controller) writeStatus(ctx context.Context, cached, cj *batchv1.CronJob) error {
	if equalStatus(&cached.Status, &cj.Status) {
		return nil
	}
	_, err := c.client.BatchV1().CronJobs(cj.Namespace).UpdateStatus(ctx, cj, metav1.UpdateOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("cronjob %s/%s status: %w", cj.Namespace, cj.Name, err)
	}
	return nil
}

func equalStatus(a, b *batchv1.CronJobStatus) bool {
	if len(a.Active) != len(b.Active) || !a.LastScheduleTime.Equal(b.LastScheduleTime) ||
		!a.LastSuccessfulTime.Equal(b.LastSuccessfulTime) {
		return false
	}
	for i := range a.Active {
		if a.Active[i].UID != b.Active[i].UID {
			return false
		}
	}
	return true
}
