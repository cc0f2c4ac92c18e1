package daemonset

import (
	"context"
	"errors"
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
	"github.com/wasmkube/wasmkube/control/controllers/replicaset"
	"github.com/wasmkube/wasmkube/control/controllers/tombstone"
)

// Name is the controller's name and event source.
const Name = "daemonset-controller"

var dsKind = appsv1.SchemeGroupVersion.WithKind("DaemonSet")

type controller struct {
	client    kubernetes.Interface
	dss       appslisters.DaemonSetLister
	pods      corelisters.PodLister
	nodes     corelisters.NodeLister
	revisions appslisters.ControllerRevisionLister
	ctrl      *framework.Controller
	exp       *replicaset.Expectations
	recorder  record.EventRecorder
	now       func() time.Time
}

// Starter runs the DaemonSet controller with two workers.
func Starter() framework.Starter {
	return func(cc *framework.Context) (func(context.Context) error, error) {
		apps := cc.Informers.Apps().V1()
		core := cc.Informers.Core().V1()
		c := &controller{
			client: cc.Client, dss: apps.DaemonSets().Lister(), pods: core.Pods().Lister(),
			nodes: core.Nodes().Lister(), revisions: apps.ControllerRevisions().Lister(),
			exp: replicaset.NewExpectations(), recorder: cc.Recorder(Name), now: cc.Now,
		}
		c.ctrl = framework.New(Name, c.sync)
		handlers := []struct {
			inf cache.SharedIndexInformer
			h   cache.ResourceEventHandler
		}{
			{apps.DaemonSets().Informer(), c.ctrl.Handler()},
			{core.Pods().Informer(), cache.ResourceEventHandlerFuncs{AddFunc: c.addPod, UpdateFunc: c.updatePod, DeleteFunc: c.deletePod}},
			{core.Nodes().Informer(), cache.ResourceEventHandlerFuncs{
				AddFunc:    func(any) { c.enqueueAll() },
				UpdateFunc: c.updateNode,
				DeleteFunc: func(any) { c.enqueueAll() },
			}},
			{apps.ControllerRevisions().Informer(), cache.ResourceEventHandlerFuncs{}},
		}
		synced := make([]cache.InformerSynced, 0, len(handlers))
		for _, h := range handlers {
			if _, err := h.inf.AddEventHandler(h.h); err != nil {
				return nil, fmt.Errorf("daemonset handler: %w", err)
			}
			synced = append(synced, h.inf.HasSynced)
		}
		return func(ctx context.Context) error { return c.ctrl.Run(ctx, 2, synced...) }, nil
	}
}

func key(namespace, name string) string { return namespace + "/" + name }

// ownerKey is the key of the DaemonSet that controls pod, if it exists.
func (c *controller) ownerKey(pod *corev1.Pod) (string, bool) {
	ref := metav1.GetControllerOf(pod)
	if ref == nil || ref.Kind != dsKind.Kind {
		return "", false
	}
	ds, err := c.dss.DaemonSets(pod.Namespace).Get(ref.Name)
	if err != nil || ds.UID != ref.UID {
		return "", false
	}
	return key(ds.Namespace, ds.Name), true
}

// enqueueMatching enqueues the DaemonSets that could adopt an orphan pod.
func (c *controller) enqueueMatching(pod *corev1.Pod) {
	all, err := c.dss.DaemonSets(pod.Namespace).List(labels.Everything())
	if err != nil {
		return
	}
	for _, ds := range all {
		sel, err := metav1.LabelSelectorAsSelector(ds.Spec.Selector)
		if err == nil && !sel.Empty() && sel.Matches(labels.Set(pod.Labels)) {
			c.ctrl.EnqueueKey(key(ds.Namespace, ds.Name))
		}
	}
}

func (c *controller) addPod(obj any) {
	pod := obj.(*corev1.Pod)
	if pod.DeletionTimestamp != nil {
		c.deletePod(pod)
		return
	}
	if k, ok := c.ownerKey(pod); ok {
		c.exp.CreationObserved(k)
		c.ctrl.EnqueueKey(k)
		return
	}
	if metav1.GetControllerOf(pod) == nil {
		c.enqueueMatching(pod)
	}
}

func (c *controller) updatePod(oldObj, newObj any) {
	old, cur := oldObj.(*corev1.Pod), newObj.(*corev1.Pod)
	if old.ResourceVersion == cur.ResourceVersion {
		return
	}
	if cur.DeletionTimestamp != nil {
		c.deletePod(cur)
		return
	}
	if k, ok := c.ownerKey(old); ok {
		c.ctrl.EnqueueKey(k)
	}
	if k, ok := c.ownerKey(cur); ok {
		c.ctrl.EnqueueKey(k)
		if ds, err := c.dss.DaemonSets(cur.Namespace).Get(metav1.GetControllerOf(cur).Name); err == nil &&
			ds.Spec.MinReadySeconds > 0 && !podutils.IsPodReady(old) && podutils.IsPodReady(cur) {
			// Look again once the pod counts as available.
			c.ctrl.EnqueueAfter(k, time.Duration(ds.Spec.MinReadySeconds)*time.Second+time.Second)
		}
		return
	}
	if metav1.GetControllerOf(cur) == nil {
		c.enqueueMatching(cur)
	}
}

func (c *controller) deletePod(obj any) {
	pod, ok := tombstone.Unwrap[*corev1.Pod](obj)
	if !ok {
		return
	}
	if k, ok := c.ownerKey(pod); ok {
		c.exp.DeletionObserved(k, key(pod.Namespace, pod.Name))
		c.ctrl.EnqueueKey(k)
	}
}

// updateNode reacts only to what eligibility depends on; heartbeats change
// a node every few seconds and must not wake every DaemonSet.
func (c *controller) updateNode(oldObj, newObj any) {
	old, cur := oldObj.(*corev1.Node), newObj.(*corev1.Node)
	if labels.Equals(old.Labels, cur.Labels) && taintsEqual(old.Spec.Taints, cur.Spec.Taints) &&
		old.Spec.Unschedulable == cur.Spec.Unschedulable {
		return
	}
	c.enqueueAll()
}

func taintsEqual(a, b []corev1.Taint) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Key != b[i].Key || a[i].Value != b[i].Value || a[i].Effect != b[i].Effect {
			return false
		}
	}
	return true
}

func (c *controller) enqueueAll() {
	all, err := c.dss.List(labels.Everything())
	if err != nil {
		return
	}
	for _, ds := range all {
		c.ctrl.EnqueueKey(key(ds.Namespace, ds.Name))
	}
}

func (c *controller) sync(ctx context.Context, k string) error {
	namespace, name, err := cache.SplitMetaNamespaceKey(k)
	if err != nil {
		return fmt.Errorf("bad key %q: %w", k, err)
	}
	ds, err := c.dss.DaemonSets(namespace).Get(name)
	if apierrors.IsNotFound(err) {
		c.exp.Forget(k)
		return nil
	}
	if err != nil {
		return fmt.Errorf("daemonset %s: %w", k, err)
	}
	selector, err := metav1.LabelSelectorAsSelector(ds.Spec.Selector)
	if err != nil || selector.Empty() {
		c.recorder.Eventf(ds, corev1.EventTypeWarning, "SelectingAll", "This daemon set is selecting all pods. A non-empty selector is required.")
		return nil
	}
	// Read before listing: a creation observed after the listing must not
	// count as seen in it.
	satisfied := c.exp.Satisfied(k)
	pods, err := c.claimPods(ctx, ds, selector)
	if err != nil {
		return err
	}
	nodes, err := c.nodes.List(labels.Everything())
	if err != nil {
		return fmt.Errorf("listing nodes: %w", err)
	}
	if ds.DeletionTimestamp != nil {
		// A dying DaemonSet makes nothing new; its status still follows its pods.
		return c.updateStatus(ctx, ds, nodes, pods, "")
	}
	cur, err := c.syncRevisions(ctx, ds, pods)
	if err != nil {
		return err
	}
	hash := cur.Labels[appsv1.DefaultDaemonSetUniqueLabelKey]
	if satisfied {
		err := c.manage(ctx, ds, nodes, pods, hash)
		if err == nil && ds.Spec.UpdateStrategy.Type == appsv1.RollingUpdateDaemonSetStrategyType {
			err = c.rollingUpdate(ctx, ds, nodes, pods, hash)
		}
		if err != nil && !errors.Is(err, errSettling) {
			_ = c.updateStatus(ctx, ds, nodes, pods, hash)
			return err
		}
	}
	return c.updateStatus(ctx, ds, nodes, pods, hash)
}

// claimPods returns the pods the DaemonSet owns, adopting matching orphans.
func (c *controller) claimPods(ctx context.Context, ds *appsv1.DaemonSet, selector labels.Selector) ([]*corev1.Pod, error) {
	return replicaset.ClaimPods(ctx, c.client, c.pods, ds, dsKind, selector, c.client.AppsV1().DaemonSets(ds.Namespace).Get)
}

// podAvailable is Ready for at least minReadySeconds.
func podAvailable(p *corev1.Pod, minReady int32, now time.Time) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			return minReady == 0 || !c.LastTransitionTime.Add(time.Duration(minReady)*time.Second).After(now)
		}
	}
	return false
}
