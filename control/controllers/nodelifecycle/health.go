package nodelifecycle

import (
	"context"
	"fmt"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
)

// Upstream's reasons and messages for conditions the controller writes.
const (
	reasonUnknown      = "NodeStatusUnknown"
	messageUnknown     = "Kubelet stopped posting node status."
	reasonNeverUpdated = "NodeStatusNeverUpdated"
	messageNeverUpdate = "Kubelet never posted node status."
)

// kubeletConditions are the conditions a silent kubelet can no longer
// vouch for.
var kubeletConditions = []corev1.NodeConditionType{
	corev1.NodeReady, corev1.NodeMemoryPressure, corev1.NodeDiskPressure, corev1.NodePIDPressure,
}

func (c *controller) syncNode(ctx context.Context, name string) error {
	node, err := c.nodes.Get(name)
	if apierrors.IsNotFound(err) {
		c.mu.Lock()
		delete(c.health, name)
		c.mu.Unlock()
		return nil
	}
	if err != nil {
		return fmt.Errorf("node %s: %w", name, err)
	}
	now := c.now()
	probe, wasReady := c.observe(node, now)
	grace := c.opts.GracePeriod
	if readyCondition(node) == nil {
		grace = c.opts.StartupGracePeriod
	}
	if silent := now.Sub(probe); silent >= grace {
		if updated, changed := markUnknown(node, now); changed {
			got, err := c.client.CoreV1().Nodes().UpdateStatus(ctx, updated, metav1.UpdateOptions{})
			if err != nil {
				return fmt.Errorf("marking node %s unknown: %w", name, err)
			}
			node = got
		}
	} else {
		c.nodeCtrl.EnqueueAfter(name, grace-silent+requeueMargin)
	}
	if wasReady == corev1.ConditionTrue && readyStatus(node) != corev1.ConditionTrue {
		c.recorder.Eventf(&corev1.ObjectReference{APIVersion: "v1", Kind: "Node", Name: node.Name, UID: node.UID},
			corev1.EventTypeNormal, "NodeNotReady", "Node %s status is now: %s", node.Name, "NodeNotReady")
	}
	c.mu.Lock()
	if h := c.health[name]; h != nil {
		h.ready = readyStatus(node)
	}
	c.mu.Unlock()
	return c.reconcileTaints(ctx, node)
}

// observe records heartbeat changes and returns when the last one was
// seen, plus the Ready status the previous sync left.
func (c *controller) observe(node *corev1.Node, now time.Time) (time.Time, corev1.ConditionStatus) {
	renew := ""
	if l, err := c.leases.Leases(corev1.NamespaceNodeLease).Get(node.Name); err == nil && l.Spec.RenewTime != nil {
		renew = l.Spec.RenewTime.UTC().Format(time.RFC3339Nano)
	}
	var heartbeat time.Time
	if rc := readyCondition(node); rc != nil {
		heartbeat = rc.LastHeartbeatTime.Time
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	h := c.health[node.Name]
	if h == nil {
		// First sight (or a restart of the controller): a full grace
		// period from now, as upstream.
		h = &nodeHealth{probe: now, renew: renew, heartbeat: heartbeat, ready: readyStatus(node)}
		c.health[node.Name] = h
		return h.probe, h.ready
	}
	if renew != h.renew || !heartbeat.Equal(h.heartbeat) {
		h.probe, h.renew, h.heartbeat = now, renew, heartbeat
	}
	return h.probe, h.ready
}

// markUnknown sets the kubelet's conditions to Unknown; the heartbeat time
// is kept, since it tells when the kubelet was last heard of.
func markUnknown(node *corev1.Node, now time.Time) (*corev1.Node, bool) {
	out := node.DeepCopy()
	changed := false
	ts := metav1.NewTime(now)
	for _, t := range kubeletConditions {
		found := false
		for i := range out.Status.Conditions {
			cond := &out.Status.Conditions[i]
			if cond.Type != t {
				continue
			}
			found = true
			if cond.Status != corev1.ConditionUnknown {
				cond.Status, cond.Reason, cond.Message, cond.LastTransitionTime = corev1.ConditionUnknown, reasonUnknown, messageUnknown, ts
				changed = true
			}
		}
		if !found {
			out.Status.Conditions = append(out.Status.Conditions, corev1.NodeCondition{
				Type: t, Status: corev1.ConditionUnknown, Reason: reasonNeverUpdated, Message: messageNeverUpdate,
				LastHeartbeatTime: node.CreationTimestamp, LastTransitionTime: ts,
			})
			changed = true
		}
	}
	return out, changed
}

// taintKey identifies a controller-managed taint.
type taintKey struct {
	key    string
	effect corev1.TaintEffect
}

// managedTaints are the taints this controller owns: it adds and removes
// them, and leaves every other taint alone.
var managedTaints = map[taintKey]bool{
	{corev1.TaintNodeNotReady, corev1.TaintEffectNoExecute}:            true,
	{corev1.TaintNodeUnreachable, corev1.TaintEffectNoExecute}:         true,
	{corev1.TaintNodeNotReady, corev1.TaintEffectNoSchedule}:           true,
	{corev1.TaintNodeUnreachable, corev1.TaintEffectNoSchedule}:        true,
	{corev1.TaintNodeMemoryPressure, corev1.TaintEffectNoSchedule}:     true,
	{corev1.TaintNodeDiskPressure, corev1.TaintEffectNoSchedule}:       true,
	{corev1.TaintNodePIDPressure, corev1.TaintEffectNoSchedule}:        true,
	{corev1.TaintNodeNetworkUnavailable, corev1.TaintEffectNoSchedule}: true,
	{corev1.TaintNodeUnschedulable, corev1.TaintEffectNoSchedule}:      true,
}

// desiredTaints maps the node's conditions to taints, as upstream's
// NoExecute and NoSchedule tainting passes do.
func desiredTaints(node *corev1.Node) map[taintKey]bool {
	want := map[taintKey]bool{}
	for _, cond := range node.Status.Conditions {
		switch {
		case cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionFalse:
			want[taintKey{corev1.TaintNodeNotReady, corev1.TaintEffectNoExecute}] = true
			want[taintKey{corev1.TaintNodeNotReady, corev1.TaintEffectNoSchedule}] = true
		case cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionUnknown:
			want[taintKey{corev1.TaintNodeUnreachable, corev1.TaintEffectNoExecute}] = true
			want[taintKey{corev1.TaintNodeUnreachable, corev1.TaintEffectNoSchedule}] = true
		case cond.Type == corev1.NodeMemoryPressure && cond.Status == corev1.ConditionTrue:
			want[taintKey{corev1.TaintNodeMemoryPressure, corev1.TaintEffectNoSchedule}] = true
		case cond.Type == corev1.NodeDiskPressure && cond.Status == corev1.ConditionTrue:
			want[taintKey{corev1.TaintNodeDiskPressure, corev1.TaintEffectNoSchedule}] = true
		case cond.Type == corev1.NodePIDPressure && cond.Status == corev1.ConditionTrue:
			want[taintKey{corev1.TaintNodePIDPressure, corev1.TaintEffectNoSchedule}] = true
		case cond.Type == corev1.NodeNetworkUnavailable && cond.Status == corev1.ConditionTrue:
			want[taintKey{corev1.TaintNodeNetworkUnavailable, corev1.TaintEffectNoSchedule}] = true
		}
	}
	if node.Spec.Unschedulable {
		want[taintKey{corev1.TaintNodeUnschedulable, corev1.TaintEffectNoSchedule}] = true
	}
	return want
}

// retaint returns the node's taints with the managed ones brought in line
// with its conditions, and whether anything changed. Taints that stay keep
// their timeAdded.
func retaint(node *corev1.Node, now time.Time) ([]corev1.Taint, bool) {
	want := desiredTaints(node)
	var out []corev1.Taint
	have := map[taintKey]bool{}
	changed := false
	for _, t := range node.Spec.Taints {
		k := taintKey{t.Key, t.Effect}
		if managedTaints[k] && !want[k] {
			changed = true
			continue
		}
		have[k] = true
		out = append(out, t)
	}
	added := metav1.NewTime(now)
	// A stable order keeps repeated syncs from rewriting the node.
	for _, k := range sortedKeys(want) {
		if !have[k] {
			out = append(out, corev1.Taint{Key: k.key, Effect: k.effect, TimeAdded: &added})
			changed = true
		}
	}
	return out, changed
}

func sortedKeys(m map[taintKey]bool) []taintKey {
	var keys []taintKey
	for k := range managedTaints {
		if m[k] {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].key != keys[j].key {
			return keys[i].key < keys[j].key
		}
		return keys[i].effect < keys[j].effect
	})
	return keys
}

func (c *controller) reconcileTaints(ctx context.Context, node *corev1.Node) error {
	if _, changed := retaint(node, c.now()); !changed {
		return nil
	}
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		// Taints are shared with users and other controllers: recompute on
		// the latest object and write only ours.
		cur, err := c.client.CoreV1().Nodes().Get(ctx, node.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		taints, changed := retaint(cur, c.now())
		if !changed {
			return nil
		}
		cur.Spec.Taints = taints
		_, err = c.client.CoreV1().Nodes().Update(ctx, cur, metav1.UpdateOptions{})
		return err
	})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("tainting node %s: %w", node.Name, err)
	}
	return nil
}
