package deployment

import (
	"context"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
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
const Name = "deployment-controller"

var deploymentKind = appsv1.SchemeGroupVersion.WithKind("Deployment")

type controller struct {
	client      kubernetes.Interface
	deployments appslisters.DeploymentLister
	rss         appslisters.ReplicaSetLister
	pods        corelisters.PodLister
	ctrl        *framework.Controller
	recorder    record.EventRecorder
	now         func() time.Time
}

// Starter runs the Deployment controller with five workers.
func Starter() framework.Starter {
	return func(cc *framework.Context) (func(context.Context) error, error) {
		dInf := cc.Informers.Apps().V1().Deployments()
		rsInf := cc.Informers.Apps().V1().ReplicaSets()
		podInf := cc.Informers.Core().V1().Pods()
		c := &controller{
			client: cc.Client, deployments: dInf.Lister(), rss: rsInf.Lister(), pods: podInf.Lister(),
			recorder: cc.Recorder(Name), now: cc.Now,
		}
		c.ctrl = framework.New(Name, c.sync)
		if _, err := dInf.Informer().AddEventHandler(c.ctrl.Handler()); err != nil {
			return nil, fmt.Errorf("deployment handler: %w", err)
		}
		if _, err := rsInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    c.rsChanged,
			UpdateFunc: func(old, cur any) { c.rsChanged(old); c.rsChanged(cur) },
			DeleteFunc: c.rsChanged,
		}); err != nil {
			return nil, fmt.Errorf("replicaset handler: %w", err)
		}
		if _, err := podInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{DeleteFunc: c.podDeleted}); err != nil {
			return nil, fmt.Errorf("pod handler: %w", err)
		}
		return func(ctx context.Context) error {
			return c.ctrl.Run(ctx, 5, dInf.Informer().HasSynced, rsInf.Informer().HasSynced, podInf.Informer().HasSynced)
		}, nil
	}
}

// rsChanged enqueues the Deployment that owns a ReplicaSet, or for an
// orphan every Deployment that could adopt it.
func (c *controller) rsChanged(obj any) {
	rs, ok := tombstone.Unwrap[*appsv1.ReplicaSet](obj)
	if !ok {
		return
	}
	if ref := metav1.GetControllerOf(rs); ref != nil {
		if ref.Kind != deploymentKind.Kind {
			return
		}
		if d, err := c.deployments.Deployments(rs.Namespace).Get(ref.Name); err == nil && d.UID == ref.UID {
			c.ctrl.Enqueue(d)
		}
		return
	}
	all, err := c.deployments.Deployments(rs.Namespace).List(labels.Everything())
	if err != nil {
		return
	}
	for _, d := range all {
		sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
		if err == nil && !sel.Empty() && sel.Matches(labels.Set(rs.Labels)) {
			c.ctrl.Enqueue(d)
		}
	}
}

// podDeleted matters to Recreate only, which waits for old pods to be gone
// before it creates new ones.
func (c *controller) podDeleted(obj any) {
	pod, ok := tombstone.Unwrap[*corev1.Pod](obj)
	if !ok {
		return
	}
	ref := metav1.GetControllerOf(pod)
	if ref == nil || ref.Kind != "ReplicaSet" {
		return
	}
	rs, err := c.rss.ReplicaSets(pod.Namespace).Get(ref.Name)
	if err != nil || rs.UID != ref.UID {
		return
	}
	dref := metav1.GetControllerOf(rs)
	if dref == nil || dref.Kind != deploymentKind.Kind {
		return
	}
	d, err := c.deployments.Deployments(rs.Namespace).Get(dref.Name)
	if err == nil && d.UID == dref.UID && d.Spec.Strategy.Type == appsv1.RecreateDeploymentStrategyType {
		c.ctrl.Enqueue(d)
	}
}

func (c *controller) sync(ctx context.Context, key string) error {
	namespace, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return fmt.Errorf("bad key %q: %w", key, err)
	}
	cached, err := c.deployments.Deployments(namespace).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("deployment %s: %w", key, err)
	}
	d := cached.DeepCopy()
	if d.Spec.Selector == nil || apiequality.Semantic.DeepEqual(d.Spec.Selector, &metav1.LabelSelector{}) {
		c.recorder.Eventf(d, corev1.EventTypeWarning, "SelectingAll", "This deployment is selecting all pods. A non-empty selector is required.")
		if d.Status.ObservedGeneration < d.Generation {
			d.Status.ObservedGeneration = d.Generation
			return c.writeStatus(ctx, d)
		}
		return nil
	}
	rsList, err := c.claimReplicaSets(ctx, d)
	if err != nil {
		return err
	}
	if d.DeletionTimestamp != nil {
		return c.syncStatusOnly(ctx, d, rsList)
	}
	if err := c.checkPausedConditions(ctx, d); err != nil {
		return err
	}
	if d.Spec.Paused {
		return c.scaleOnly(ctx, d, rsList)
	}
	if c.isScalingEvent(ctx, d, rsList) {
		return c.scaleOnly(ctx, d, rsList)
	}
	if d.Spec.Strategy.Type == appsv1.RecreateDeploymentStrategyType {
		return c.rolloutRecreate(ctx, d, rsList)
	}
	return c.rolloutRolling(ctx, d, rsList)
}

// claimReplicaSets returns the ReplicaSets the Deployment controls, adopting
// and releasing by selector.
func (c *controller) claimReplicaSets(ctx context.Context, d *appsv1.Deployment) ([]*appsv1.ReplicaSet, error) {
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil {
		return nil, fmt.Errorf("deployment %s/%s selector: %w", d.Namespace, d.Name, err)
	}
	all, err := c.rss.ReplicaSets(d.Namespace).List(labels.Everything())
	if err != nil {
		return nil, fmt.Errorf("listing replicasets: %w", err)
	}
	m := &replicaset.RefManager{
		Owner: d, OwnerGVK: deploymentKind, Selector: sel,
		Recheck: func(ctx context.Context) error {
			fresh, err := c.client.AppsV1().Deployments(d.Namespace).Get(ctx, d.Name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if fresh.UID != d.UID {
				return fmt.Errorf("original Deployment %s/%s is gone: got uid %v, wanted %v", d.Namespace, d.Name, fresh.UID, d.UID)
			}
			if fresh.DeletionTimestamp != nil {
				return fmt.Errorf("deployment %s/%s has just been deleted at %v", d.Namespace, d.Name, fresh.DeletionTimestamp)
			}
			return nil
		},
		Patch: func(ctx context.Context, ns, n string, patch []byte) error {
			_, err := c.client.AppsV1().ReplicaSets(ns).Patch(ctx, n, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
			return err
		},
	}
	return replicaset.Claim(ctx, m, all)
}

// writeStatus stores d's status and keeps d current, so that later writes
// in the same sync do not conflict with this one.
func (c *controller) writeStatus(ctx context.Context, d *appsv1.Deployment) error {
	out, err := c.client.AppsV1().Deployments(d.Namespace).UpdateStatus(ctx, d, metav1.UpdateOptions{})
	if err != nil {
		return fmt.Errorf("deployment %s/%s status: %w", d.Namespace, d.Name, err)
	}
	*d = *out
	return nil
}

// writeRevision stores the revision annotation on the Deployment. It is a
// metadata update of its own: the API server's status update keeps the
// stored annotations (upstream's Deployment status strategy takes them).
func (c *controller) writeRevision(ctx context.Context, d *appsv1.Deployment, rev string) error {
	if d.Annotations[RevisionAnnotation] == rev {
		return nil
	}
	cp := d.DeepCopy()
	if cp.Annotations == nil {
		cp.Annotations = map[string]string{}
	}
	cp.Annotations[RevisionAnnotation] = rev
	out, err := c.client.AppsV1().Deployments(d.Namespace).Update(ctx, cp, metav1.UpdateOptions{})
	if err != nil {
		return fmt.Errorf("deployment %s/%s revision: %w", d.Namespace, d.Name, err)
	}
	status := d.Status
	*d = *out
	d.Status = status
	return nil
}

// checkPausedConditions reports pause and resume in the Progressing
// condition, so that the progress deadline does not run while paused.
func (c *controller) checkPausedConditions(ctx context.Context, d *appsv1.Deployment) error {
	if !hasProgressDeadline(d) {
		return nil
	}
	cond := getCondition(&d.Status, appsv1.DeploymentProgressing)
	if cond != nil && cond.Reason == reasonTimedOut {
		return nil
	}
	pausedCond := cond != nil && cond.Reason == reasonPaused
	switch {
	case d.Spec.Paused && !pausedCond:
		setCondition(&d.Status, newCondition(appsv1.DeploymentProgressing, corev1.ConditionUnknown, reasonPaused, "Deployment is paused", c.now()))
	case !d.Spec.Paused && pausedCond:
		setCondition(&d.Status, newCondition(appsv1.DeploymentProgressing, corev1.ConditionUnknown, reasonResumed, "Deployment is resumed", c.now()))
	default:
		return nil
	}
	return c.writeStatus(ctx, d)
}

// isScalingEvent reports a change of spec.replicas alone, recognised by
// active ReplicaSets whose desired-replicas annotation no longer matches.
func (c *controller) isScalingEvent(ctx context.Context, d *appsv1.Deployment, rsList []*appsv1.ReplicaSet) bool {
	newRS, oldRSs := findNewAndOld(d, rsList)
	for _, rs := range activeRSs(append(oldRSs, newRS)) {
		if desired, ok := intAnnotation(rs, DesiredReplicasAnnotation); ok && desired != replicas(d) {
			return true
		}
	}
	return false
}

// findNewAndOld splits the ReplicaSets into the one whose template is the
// Deployment's (the oldest such, if several) and the others.
func findNewAndOld(d *appsv1.Deployment, rsList []*appsv1.ReplicaSet) (*appsv1.ReplicaSet, []*appsv1.ReplicaSet) {
	sorted := append([]*appsv1.ReplicaSet(nil), rsList...)
	byCreation(sorted)
	var newRS *appsv1.ReplicaSet
	var old []*appsv1.ReplicaSet
	for _, rs := range sorted {
		if newRS == nil && equalIgnoreHash(&rs.Spec.Template, &d.Spec.Template) {
			newRS = rs
			continue
		}
		old = append(old, rs)
	}
	return newRS, old
}
