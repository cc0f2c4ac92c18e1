package replicaset

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
	"k8s.io/kubectl/pkg/util/podutils"

	"github.com/wasmkube/wasmkube/control/controllers/framework"
	"github.com/wasmkube/wasmkube/control/controllers/tombstone"
)

// Name is the controller's name and event source.
const Name = "replicaset-controller"

// burstReplicas caps the pods created or deleted in one sync, as upstream.
const burstReplicas = 500

var rsKind = appsv1.SchemeGroupVersion.WithKind("ReplicaSet")

type controller struct {
	client   kubernetes.Interface
	rss      appslisters.ReplicaSetLister
	pods     corelisters.PodLister
	ctrl     *framework.Controller
	exp      *Expectations
	recorder record.EventRecorder
	now      func() time.Time
}

// Starter runs the ReplicaSet controller with five workers.
func Starter() framework.Starter {
	return func(cc *framework.Context) (func(context.Context) error, error) {
		rsInf := cc.Informers.Apps().V1().ReplicaSets()
		podInf := cc.Informers.Core().V1().Pods()
		c := &controller{
			client: cc.Client, rss: rsInf.Lister(), pods: podInf.Lister(),
			exp: NewExpectations(), recorder: cc.Recorder(Name), now: cc.Now,
		}
		c.ctrl = framework.New(Name, c.sync)
		if _, err := rsInf.Informer().AddEventHandler(c.ctrl.Handler()); err != nil {
			return nil, fmt.Errorf("replicaset handler: %w", err)
		}
		if _, err := podInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc: c.addPod, UpdateFunc: c.updatePod, DeleteFunc: c.deletePod,
		}); err != nil {
			return nil, fmt.Errorf("pod handler: %w", err)
		}
		return func(ctx context.Context) error {
			return c.ctrl.Run(ctx, 5, rsInf.Informer().HasSynced, podInf.Informer().HasSynced)
		}, nil
	}
}

// owner returns the ReplicaSet a controller reference points to, if it is
// the one in the cache (same UID).
func (c *controller) owner(namespace string, ref *metav1.OwnerReference) *appsv1.ReplicaSet {
	if ref == nil || ref.Kind != rsKind.Kind {
		return nil
	}
	rs, err := c.rss.ReplicaSets(namespace).Get(ref.Name)
	if err != nil || rs.UID != ref.UID {
		return nil
	}
	return rs
}

// matching returns the ReplicaSets whose selector selects an orphan pod.
func (c *controller) matching(pod *corev1.Pod) []*appsv1.ReplicaSet {
	all, err := c.rss.ReplicaSets(pod.Namespace).List(labels.Everything())
	if err != nil {
		return nil
	}
	var out []*appsv1.ReplicaSet
	for _, rs := range all {
		sel, err := metav1.LabelSelectorAsSelector(rs.Spec.Selector)
		if err != nil || sel.Empty() || !sel.Matches(labels.Set(pod.Labels)) {
			continue
		}
		out = append(out, rs)
	}
	return out
}

func key(namespace, name string) string { return namespace + "/" + name }

func (c *controller) addPod(obj any) {
	pod := obj.(*corev1.Pod)
	if pod.DeletionTimestamp != nil {
		// Seen for the first time while being deleted (a restart of the
		// controller manager): it counts as a deletion, not a creation.
		c.deletePod(pod)
		return
	}
	if ref := metav1.GetControllerOf(pod); ref != nil {
		if rs := c.owner(pod.Namespace, ref); rs != nil {
			k := key(rs.Namespace, rs.Name)
			c.exp.CreationObserved(k)
			c.ctrl.EnqueueKey(k)
		}
		return
	}
	for _, rs := range c.matching(pod) {
		c.ctrl.EnqueueKey(key(rs.Namespace, rs.Name))
	}
}

func (c *controller) updatePod(oldObj, newObj any) {
	old, cur := oldObj.(*corev1.Pod), newObj.(*corev1.Pod)
	if old.ResourceVersion == cur.ResourceVersion {
		return // a resync: nothing changed
	}
	labelsChanged := !labels.Equals(old.Labels, cur.Labels)
	if cur.DeletionTimestamp != nil {
		// A graceful deletion has begun: the pod no longer counts, so the
		// ReplicaSet can replace it now instead of after the grace period.
		c.deletePod(cur)
		if labelsChanged {
			c.deletePod(old)
		}
		return
	}
	curRef, oldRef := metav1.GetControllerOf(cur), metav1.GetControllerOf(old)
	if oldRef != nil && (curRef == nil || oldRef.UID != curRef.UID) {
		if rs := c.owner(old.Namespace, oldRef); rs != nil {
			c.ctrl.EnqueueKey(key(rs.Namespace, rs.Name))
		}
	}
	if curRef != nil {
		if rs := c.owner(cur.Namespace, curRef); rs != nil {
			k := key(rs.Namespace, rs.Name)
			c.ctrl.EnqueueKey(k)
			// Becoming Ready starts the minReadySeconds clock: look again
			// when the pod will count as available.
			if !podutils.IsPodReady(old) && podutils.IsPodReady(cur) && rs.Spec.MinReadySeconds > 0 {
				c.ctrl.EnqueueAfter(k, time.Duration(rs.Spec.MinReadySeconds)*time.Second+time.Second)
			}
		}
		return
	}
	if labelsChanged || oldRef != nil {
		for _, rs := range c.matching(cur) {
			c.ctrl.EnqueueKey(key(rs.Namespace, rs.Name))
		}
	}
}

func (c *controller) deletePod(obj any) {
	pod, ok := tombstone.Unwrap[*corev1.Pod](obj)
	if !ok {
		return
	}
	ref := metav1.GetControllerOf(pod)
	rs := c.owner(pod.Namespace, ref)
	if rs == nil {
		return
	}
	k := key(rs.Namespace, rs.Name)
	c.exp.DeletionObserved(k, key(pod.Namespace, pod.Name))
	c.ctrl.EnqueueKey(k)
}

func (c *controller) sync(ctx context.Context, k string) error {
	namespace, name, err := cache.SplitMetaNamespaceKey(k)
	if err != nil {
		return fmt.Errorf("bad key %q: %w", k, err)
	}
	rs, err := c.rss.ReplicaSets(namespace).Get(name)
	if apierrors.IsNotFound(err) {
		c.exp.Forget(k)
		return nil
	}
	if err != nil {
		return fmt.Errorf("replicaset %s: %w", k, err)
	}
	needsSync := c.exp.Satisfied(k)
	selector, err := metav1.LabelSelectorAsSelector(rs.Spec.Selector)
	if err != nil || selector.Empty() {
		// Validation prevents this; a bad object must not spin the queue.
		c.recorder.Eventf(rs, corev1.EventTypeWarning, "InvalidSelector", "invalid selector: %v", err)
		return nil
	}
	all, err := c.pods.Pods(namespace).List(labels.Everything())
	if err != nil {
		return fmt.Errorf("listing pods: %w", err)
	}
	active := make([]*corev1.Pod, 0, len(all))
	for _, p := range all {
		if isActive(p) {
			active = append(active, p)
		}
	}
	m := &RefManager{
		Owner: rs, OwnerGVK: rsKind, Selector: selector,
		Recheck: func(ctx context.Context) error {
			fresh, err := c.client.AppsV1().ReplicaSets(namespace).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if fresh.UID != rs.UID {
				return fmt.Errorf("original ReplicaSet %s is gone: got uid %v, wanted %v", k, fresh.UID, rs.UID)
			}
			if fresh.DeletionTimestamp != nil {
				return fmt.Errorf("ReplicaSet %s has just been deleted at %v", k, fresh.DeletionTimestamp)
			}
			return nil
		},
		Patch: patchPod(c.client),
	}
	pods, err := Claim(ctx, m, active)
	if err != nil {
		return err
	}
	var manageErr error
	if needsSync && rs.DeletionTimestamp == nil {
		manageErr = c.manageReplicas(ctx, pods, rs, k)
	}
	status := c.calculateStatus(rs, pods, manageErr)
	updated, err := c.updateStatus(ctx, rs, status)
	if err != nil {
		return err
	}
	if manageErr != nil {
		return manageErr
	}
	if updated.Spec.MinReadySeconds > 0 && updated.Status.ReadyReplicas == *updated.Spec.Replicas &&
		updated.Status.AvailableReplicas != *updated.Spec.Replicas {
		c.ctrl.EnqueueAfter(k, time.Duration(updated.Spec.MinReadySeconds)*time.Second)
	}
	return nil
}

// isActive is upstream's FilterActivePods: finished and deleting pods no
// longer count towards the replicas.
func isActive(p *corev1.Pod) bool {
	return p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed && p.DeletionTimestamp == nil
}
