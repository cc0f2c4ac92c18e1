package statefulset

import (
	"context"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/wasmkube/wasmkube/control/controllers/framework"
	"github.com/wasmkube/wasmkube/control/controllers/replicaset"
	"github.com/wasmkube/wasmkube/control/controllers/tombstone"
)

// Name is the controller's name and event source.
const Name = "statefulset-controller"

var setKind = appsv1.SchemeGroupVersion.WithKind("StatefulSet")

type controller struct {
	client    kubernetes.Interface
	sets      appslisters.StatefulSetLister
	pods      corelisters.PodLister
	claims    corelisters.PersistentVolumeClaimLister
	revisions appslisters.ControllerRevisionLister
	ctrl      *framework.Controller
	recorder  record.EventRecorder
	now       func() time.Time
}

// Starter runs the StatefulSet controller with two workers.
func Starter() framework.Starter {
	return func(cc *framework.Context) (func(context.Context) error, error) {
		apps := cc.Informers.Apps().V1()
		core := cc.Informers.Core().V1()
		c := &controller{
			client: cc.Client, sets: apps.StatefulSets().Lister(), pods: core.Pods().Lister(),
			claims: core.PersistentVolumeClaims().Lister(), revisions: apps.ControllerRevisions().Lister(),
			recorder: cc.Recorder(Name), now: cc.Now,
		}
		c.ctrl = framework.New(Name, c.sync)
		podHandler := cache.ResourceEventHandlerFuncs{
			AddFunc:    c.enqueueOwner,
			UpdateFunc: func(_, obj any) { c.enqueueOwner(obj) },
			DeleteFunc: c.enqueueOwner,
		}
		informers := []struct {
			inf cache.SharedIndexInformer
			h   cache.ResourceEventHandler
		}{
			{apps.StatefulSets().Informer(), c.ctrl.Handler()},
			{core.Pods().Informer(), podHandler},
			{core.PersistentVolumeClaims().Informer(), cache.ResourceEventHandlerFuncs{}},
			{apps.ControllerRevisions().Informer(), cache.ResourceEventHandlerFuncs{}},
		}
		synced := make([]cache.InformerSynced, 0, len(informers))
		for _, i := range informers {
			if _, err := i.inf.AddEventHandler(i.h); err != nil {
				return nil, fmt.Errorf("statefulset handler: %w", err)
			}
			synced = append(synced, i.inf.HasSynced)
		}
		return func(ctx context.Context) error { return c.ctrl.Run(ctx, 2, synced...) }, nil
	}
}

// enqueueOwner wakes the StatefulSet controlling a pod, or every set whose
// selector matches an orphan, which may adopt it.
func (c *controller) enqueueOwner(obj any) {
	pod, ok := tombstone.Unwrap[*corev1.Pod](obj)
	if !ok {
		return
	}
	if ref := metav1.GetControllerOf(pod); ref != nil {
		if ref.Kind == setKind.Kind {
			c.ctrl.EnqueueKey(pod.Namespace + "/" + ref.Name)
		}
		return
	}
	sets, err := c.sets.StatefulSets(pod.Namespace).List(labels.Everything())
	if err != nil {
		return
	}
	for _, set := range sets {
		sel, err := metav1.LabelSelectorAsSelector(set.Spec.Selector)
		if err == nil && !sel.Empty() && sel.Matches(labels.Set(pod.Labels)) {
			c.ctrl.EnqueueKey(set.Namespace + "/" + set.Name)
		}
	}
}

func (c *controller) sync(ctx context.Context, k string) error {
	namespace, name, err := cache.SplitMetaNamespaceKey(k)
	if err != nil {
		return fmt.Errorf("bad key %q: %w", k, err)
	}
	set, err := c.sets.StatefulSets(namespace).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("statefulset %s: %w", k, err)
	}
	selector, err := metav1.LabelSelectorAsSelector(set.Spec.Selector)
	if err != nil || selector.Empty() {
		c.recorder.Eventf(set, corev1.EventTypeWarning, "SelectingAll", "This statefulset is selecting all pods. A non-empty selector is required.")
		return nil
	}
	pods, err := c.claimPods(ctx, set, selector)
	if err != nil {
		return err
	}
	cur, upd, err := c.syncRevisions(ctx, set, pods)
	if err != nil {
		return err
	}
	var updErr error
	if set.DeletionTimestamp == nil {
		updErr = c.update(ctx, set, pods, cur, upd)
	}
	// Status reflects what was listed at the start of the sync; the writes
	// just made come back as events and a new sync.
	st := c.computeStatus(set, pods, cur, upd)
	if err := c.writeStatus(ctx, set, &st); err != nil {
		return err
	}
	return updErr
}

// claimPods returns the pods the set owns, adopting matching orphans.
func (c *controller) claimPods(ctx context.Context, set *appsv1.StatefulSet, selector labels.Selector) ([]*corev1.Pod, error) {
	return replicaset.ClaimPods(ctx, c.client, c.pods, set, setKind, selector, c.client.AppsV1().StatefulSets(set.Namespace).Get)
}
