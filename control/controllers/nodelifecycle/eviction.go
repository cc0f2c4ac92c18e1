package nodelifecycle

import (
	"context"
	"fmt"
	"math"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
	"k8s.io/kubectl/pkg/util/podutils"
)

// syncPod is the taint-eviction loop for one pod, plus marking pods on an
// unhealthy node not ready.
func (c *controller) syncPod(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return fmt.Errorf("pod key %q: %w", key, err)
	}
	pod, err := c.pods.Pods(ns).Get(name)
	if apierrors.IsNotFound(err) {
		c.unschedule(key)
		return nil
	}
	if err != nil {
		return fmt.Errorf("pod %s: %w", key, err)
	}
	if pod.Spec.NodeName == "" || pod.DeletionTimestamp != nil {
		// Not placed, or already on its way out: nothing to evict.
		c.unschedule(key)
		return nil
	}
	node, err := c.nodes.Get(pod.Spec.NodeName)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("node %s: %w", pod.Spec.NodeName, err)
	}
	if rs := readyStatus(node); rs != "" && rs != corev1.ConditionTrue && podutils.IsPodReady(pod) {
		if err := c.markNotReady(ctx, pod); err != nil {
			return err
		}
	}

	taints := noExecute(node.Spec.Taints)
	if len(taints) == 0 {
		c.cancel(pod)
		return nil
	}
	now := c.now()
	tolerated, wait := tolerationTime(taints, pod.Spec.Tolerations)
	if !tolerated || wait == 0 {
		return c.evict(ctx, pod)
	}
	if wait < 0 {
		// Tolerated forever.
		c.cancel(pod)
		return nil
	}
	c.mu.Lock()
	start, ok := c.scheduled[key]
	if !ok {
		start = now
		c.scheduled[key] = start
	}
	c.mu.Unlock()
	if left := start.Add(wait).Sub(now); left > 0 {
		c.podCtrl.EnqueueAfter(key, left+requeueMargin)
		return nil
	}
	return c.evict(ctx, pod)
}

// tolerationTime reports whether every taint is tolerated and, if so, for
// how long: the shortest tolerationSeconds among the tolerations used, 0
// for "evict now", -1 for "forever".
func tolerationTime(taints []corev1.Taint, tolerations []corev1.Toleration) (bool, time.Duration) {
	logger := klog.Background()
	shortest := int64(math.MaxInt64)
	for i := range taints {
		var used *corev1.Toleration
		for j := range tolerations {
			if tolerations[j].ToleratesTaint(logger, &taints[i], false) {
				used = &tolerations[j]
				break
			}
		}
		if used == nil {
			return false, 0
		}
		if used.TolerationSeconds != nil {
			if *used.TolerationSeconds <= 0 {
				return true, 0
			}
			shortest = min(shortest, *used.TolerationSeconds)
		}
	}
	if shortest == math.MaxInt64 {
		return true, -1
	}
	return true, time.Duration(shortest) * time.Second
}

// cancel drops a pending eviction, with upstream's event.
func (c *controller) cancel(pod *corev1.Pod) {
	key := pod.Namespace + "/" + pod.Name
	c.mu.Lock()
	_, ok := c.scheduled[key]
	delete(c.scheduled, key)
	c.mu.Unlock()
	if ok {
		c.evictRec.Eventf(podRef(pod), corev1.EventTypeNormal, "TaintManagerEviction", "Cancelling deletion of Pod %s", key)
	}
}

func (c *controller) unschedule(key string) {
	c.mu.Lock()
	delete(c.scheduled, key)
	c.mu.Unlock()
}

func podRef(pod *corev1.Pod) *corev1.ObjectReference {
	return &corev1.ObjectReference{APIVersion: "v1", Kind: "Pod", Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID}
}

// evict deletes the pod with its default grace period, after recording
// why in a DisruptionTarget condition, as upstream's taint manager does.
func (c *controller) evict(ctx context.Context, pod *corev1.Pod) error {
	key := pod.Namespace + "/" + pod.Name
	if !hasCondition(pod, corev1.DisruptionTarget) {
		updated := pod.DeepCopy()
		updated.Status.Conditions = append(updated.Status.Conditions, corev1.PodCondition{
			Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue,
			Reason: "DeletionByTaintManager", Message: "Taint manager: deleting due to NoExecute taint",
			LastTransitionTime: metav1.NewTime(c.now()),
		})
		if _, err := c.client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, updated, metav1.UpdateOptions{}); err != nil {
			if apierrors.IsNotFound(err) {
				c.unschedule(key)
				return nil
			}
			return fmt.Errorf("marking pod %s for eviction: %w", key, err)
		}
	}
	c.evictRec.Eventf(podRef(pod), corev1.EventTypeNormal, "TaintManagerEviction", "Marking for deletion Pod %s", key)
	err := c.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
		Preconditions: &metav1.Preconditions{UID: &pod.UID},
	})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("evicting pod %s: %w", key, err)
	}
	c.unschedule(key)
	return nil
}

func hasCondition(pod *corev1.Pod, t corev1.PodConditionType) bool {
	for _, cond := range pod.Status.Conditions {
		if cond.Type == t && cond.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

// markNotReady sets the pod's Ready condition False: its kubelet is not
// there to do it, and endpoints must stop sending it traffic.
func (c *controller) markNotReady(ctx context.Context, pod *corev1.Pod) error {
	updated := pod.DeepCopy()
	for i := range updated.Status.Conditions {
		cond := &updated.Status.Conditions[i]
		if cond.Type == corev1.PodReady {
			cond.Status, cond.LastTransitionTime = corev1.ConditionFalse, metav1.NewTime(c.now())
		}
	}
	if _, err := c.client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, updated, metav1.UpdateOptions{}); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("marking pod %s/%s not ready: %w", pod.Namespace, pod.Name, err)
	}
	c.recorder.Event(pod, corev1.EventTypeWarning, "NodeNotReady", "Node is not ready")
	return nil
}
