package job

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	batchlisters "k8s.io/client-go/listers/batch/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/wasmkube/wasmkube/control/controllers/framework"
	"github.com/wasmkube/wasmkube/control/controllers/replicaset"
	"github.com/wasmkube/wasmkube/control/controllers/tombstone"
)

// Name is the controller's name and event source.
const Name = "job-controller"

// trackingFinalizer keeps a finished pod around until it has been counted.
const trackingFinalizer = batchv1.JobTrackingFinalizer

var jobKind = batchv1.SchemeGroupVersion.WithKind("Job")

type controller struct {
	client   kubernetes.Interface
	jobs     batchlisters.JobLister
	pods     corelisters.PodLister
	ctrl     *framework.Controller
	exp      *replicaset.Expectations
	recorder record.EventRecorder
	now      func() time.Time

	// counted holds, per Job key, the UIDs of pods whose finalizer this
	// controller removed after counting them; see the package doc.
	mu      sync.Mutex
	counted map[string]map[types.UID]bool
	// written is, per Job key, the resourceVersion of the last status
	// this controller wrote. A cached Job older than that must not drive
	// pod creation: its counts would be behind (a pod already counted
	// would look like missing work and be replaced twice).
	written map[string]int64
}

// Starter runs the Job controller with five workers.
func Starter() framework.Starter {
	return func(cc *framework.Context) (func(context.Context) error, error) {
		jobInf := cc.Informers.Batch().V1().Jobs()
		podInf := cc.Informers.Core().V1().Pods()
		c := &controller{
			client: cc.Client, jobs: jobInf.Lister(), pods: podInf.Lister(),
			exp: replicaset.NewExpectations(), recorder: cc.Recorder(Name), now: cc.Now,
			counted: map[string]map[types.UID]bool{}, written: map[string]int64{},
		}
		c.ctrl = framework.New(Name, c.sync)
		if _, err := jobInf.Informer().AddEventHandler(c.ctrl.Handler()); err != nil {
			return nil, fmt.Errorf("job handler: %w", err)
		}
		if _, err := podInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc: c.addPod,
			UpdateFunc: func(_, obj any) {
				if p := obj.(*corev1.Pod); p.DeletionTimestamp != nil {
					c.deletePod(p)
					return
				}
				c.enqueueOwner(obj.(*corev1.Pod))
			},
			DeleteFunc: c.deletePod,
		}); err != nil {
			return nil, fmt.Errorf("pod handler: %w", err)
		}
		return func(ctx context.Context) error {
			return c.ctrl.Run(ctx, 5, jobInf.Informer().HasSynced, podInf.Informer().HasSynced)
		}, nil
	}
}

// ownerKey names the Job a pod's controller reference points to, whether or
// not that Job still exists: a pod of a deleted Job still needs its
// finalizer removed.
func ownerKey(pod *corev1.Pod) (string, bool) {
	ref := metav1.GetControllerOf(pod)
	if ref == nil || ref.Kind != jobKind.Kind || ref.APIVersion != jobKind.GroupVersion().String() {
		return "", false
	}
	return pod.Namespace + "/" + ref.Name, true
}

func (c *controller) enqueueOwner(pod *corev1.Pod) {
	if k, ok := ownerKey(pod); ok {
		c.ctrl.EnqueueKey(k)
	}
}

func (c *controller) addPod(obj any) {
	pod := obj.(*corev1.Pod)
	if pod.DeletionTimestamp != nil {
		c.deletePod(pod)
		return
	}
	if k, ok := ownerKey(pod); ok {
		c.exp.CreationObserved(k)
		c.ctrl.EnqueueKey(k)
	}
}

func (c *controller) deletePod(obj any) {
	pod, ok := tombstone.Unwrap[*corev1.Pod](obj)
	if !ok {
		return
	}
	if k, ok := ownerKey(pod); ok {
		c.exp.DeletionObserved(k, pod.Namespace+"/"+pod.Name)
		c.ctrl.EnqueueKey(k)
	}
}

func (c *controller) sync(ctx context.Context, k string) error {
	namespace, name, err := cache.SplitMetaNamespaceKey(k)
	if err != nil {
		return fmt.Errorf("bad key %q: %w", k, err)
	}
	job, err := c.jobs.Jobs(namespace).Get(name)
	if apierrors.IsNotFound(err) {
		c.exp.Forget(k)
		c.mu.Lock()
		delete(c.counted, k)
		delete(c.written, k)
		c.mu.Unlock()
		return c.releaseOrphans(ctx, namespace, name, "")
	}
	if err != nil {
		return fmt.Errorf("job %s: %w", k, err)
	}
	if c.stale(k, job) {
		// The informer will deliver our own write and enqueue the Job again.
		return nil
	}
	// Pods left by an earlier Job of the same name must not wait forever.
	if err := c.releaseOrphans(ctx, namespace, name, job.UID); err != nil {
		return err
	}
	// Read before listing: a creation observed after the listing must not
	// count as seen in it.
	satisfied := c.exp.Satisfied(k)
	pods, err := c.claimPods(ctx, job)
	if err != nil {
		return err
	}
	if finished(job) || job.DeletionTimestamp != nil {
		// Nothing more is counted; pods only need to be let go.
		if err := c.removeFinalizers(ctx, k, pods, nil, nil); err != nil {
			return err
		}
		return c.expireTTL(ctx, job)
	}
	return c.syncJob(ctx, k, job, pods, satisfied)
}

// releaseOrphans removes the tracking finalizer from pods whose Job (of this
// name, other than uid) is gone.
func (c *controller) releaseOrphans(ctx context.Context, namespace, name string, uid types.UID) error {
	all, err := c.pods.Pods(namespace).List(labels.Everything())
	if err != nil {
		return fmt.Errorf("listing pods: %w", err)
	}
	var orphans []*corev1.Pod
	for _, p := range all {
		ref := metav1.GetControllerOf(p)
		if ref != nil && ref.Kind == jobKind.Kind && ref.Name == name && ref.UID != uid && hasFinalizer(p) {
			orphans = append(orphans, p)
		}
	}
	if len(orphans) == 0 {
		return nil
	}
	return c.removeFinalizers(ctx, namespace+"/"+name, orphans, nil, nil)
}

// claimPods returns the Job's pods, adopting matching orphans (for a
// manualSelector Job).
func (c *controller) claimPods(ctx context.Context, job *batchv1.Job) ([]*corev1.Pod, error) {
	selector, err := metav1.LabelSelectorAsSelector(job.Spec.Selector)
	if err != nil {
		return nil, fmt.Errorf("job %s/%s selector: %w", job.Namespace, job.Name, err)
	}
	return replicaset.ClaimPods(ctx, c.client, c.pods, job, jobKind, selector, c.client.BatchV1().Jobs(job.Namespace).Get)
}

// stale reports whether the cached Job predates the last status written.
// Resource versions are etcd revisions here, so they order.
func (c *controller) stale(k string, job *batchv1.Job) bool {
	rv, err := strconv.ParseInt(job.ResourceVersion, 10, 64)
	if err != nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return rv < c.written[k]
}

func (c *controller) wrote(job *batchv1.Job) {
	rv, err := strconv.ParseInt(job.ResourceVersion, 10, 64)
	if err != nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.written[job.Namespace+"/"+job.Name] = rv
}
