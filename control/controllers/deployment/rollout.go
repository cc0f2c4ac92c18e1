package deployment

import (
	"context"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// rolloutRolling moves one step of a rolling update per sync: scale the new
// ReplicaSet up within maxSurge, else scale old ones down within
// maxUnavailable, else clean up history. Every step ends with a status
// write, whose watch event brings the next sync.
func (c *controller) rolloutRolling(ctx context.Context, d *appsv1.Deployment, rsList []*appsv1.ReplicaSet) error {
	newRS, old, err := c.newAndOld(ctx, d, rsList, true)
	if err != nil {
		return err
	}
	all := append(append([]*appsv1.ReplicaSet(nil), old...), newRS)

	if rsReplicas(newRS) != replicas(d) {
		target := replicas(d)
		if rsReplicas(newRS) < replicas(d) {
			target = newRSReplicas(d, all, newRS)
		}
		scaled, _, err := c.scaleRS(ctx, newRS, target, d)
		if err != nil {
			return err
		}
		if scaled {
			return c.syncRolloutStatus(ctx, d, all, newRS)
		}
	}

	scaledDown, err := c.reconcileOld(ctx, d, all, activeRSs(old), newRS)
	if err != nil {
		return err
	}
	if scaledDown {
		return c.syncRolloutStatus(ctx, d, all, newRS)
	}
	if deploymentComplete(d, &d.Status) {
		if err := c.cleanup(ctx, d, old); err != nil {
			return err
		}
	}
	return c.syncRolloutStatus(ctx, d, all, newRS)
}

// reconcileOld scales old ReplicaSets down: first their unavailable pods
// (removing them cannot lower availability), then available ones as far as
// maxUnavailable allows.
func (c *controller) reconcileOld(ctx context.Context, d *appsv1.Deployment, all, old []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet) (bool, error) {
	if sumSpec(old) == 0 {
		return false, nil
	}
	minAvailable := replicas(d) - maxUnavailable(d)
	newUnavailable := rsReplicas(newRS) - newRS.Status.AvailableReplicas
	maxScaledDown := sumSpec(all) - minAvailable - newUnavailable
	if maxScaledDown <= 0 {
		return false, nil
	}
	byCreation(old)
	total := int32(0)
	for i, rs := range old {
		if total >= maxScaledDown {
			break
		}
		if rsReplicas(rs) == 0 || rsReplicas(rs) == rs.Status.AvailableReplicas {
			continue
		}
		n := min(maxScaledDown-total, rsReplicas(rs)-rs.Status.AvailableReplicas)
		_, out, err := c.scaleRS(ctx, rs, rsReplicas(rs)-n, d)
		if err != nil {
			return total > 0, err
		}
		old[i] = out
		total += n
	}

	all = append(append([]*appsv1.ReplicaSet(nil), old...), newRS)
	availableN := sumStatus(all, available)
	if availableN > minAvailable {
		budget := availableN - minAvailable
		done := int32(0)
		for _, rs := range old {
			if done >= budget {
				break
			}
			if rsReplicas(rs) == 0 {
				continue
			}
			n := min(rsReplicas(rs), budget-done)
			if _, _, err := c.scaleRS(ctx, rs, rsReplicas(rs)-n, d); err != nil {
				return true, err
			}
			done += n
		}
		total += done
	}
	return total > 0, nil
}

// rolloutRecreate scales every old ReplicaSet to zero, waits until their
// pods are gone, then brings up the new one at full size.
func (c *controller) rolloutRecreate(ctx context.Context, d *appsv1.Deployment, rsList []*appsv1.ReplicaSet) error {
	newRS, old, err := c.newAndOld(ctx, d, rsList, false)
	if err != nil {
		return err
	}
	all := append(append([]*appsv1.ReplicaSet(nil), old...), newRS)
	scaledDown := false
	for _, rs := range activeRSs(old) {
		scaled, _, err := c.scaleRS(ctx, rs, 0, d)
		if err != nil {
			return err
		}
		scaledDown = scaledDown || scaled
	}
	if scaledDown {
		return c.syncRolloutStatus(ctx, d, all, newRS)
	}
	running, err := c.oldPodsRunning(d, newRS, old)
	if err != nil {
		return err
	}
	if running {
		return c.syncRolloutStatus(ctx, d, all, newRS)
	}
	if newRS == nil {
		newRS, old, err = c.newAndOld(ctx, d, rsList, true)
		if err != nil {
			return err
		}
		all = append(append([]*appsv1.ReplicaSet(nil), old...), newRS)
	}
	if _, _, err := c.scaleRS(ctx, newRS, replicas(d), d); err != nil {
		return err
	}
	if deploymentComplete(d, &d.Status) {
		if err := c.cleanup(ctx, d, old); err != nil {
			return err
		}
	}
	return c.syncRolloutStatus(ctx, d, all, newRS)
}

// oldPodsRunning reports whether any pod of an old ReplicaSet has not
// finished, which Recreate must wait for.
func (c *controller) oldPodsRunning(d *appsv1.Deployment, newRS *appsv1.ReplicaSet, old []*appsv1.ReplicaSet) (bool, error) {
	if sumStatus(old, actual) > 0 {
		return true, nil
	}
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil {
		return false, err
	}
	pods, err := c.pods.Pods(d.Namespace).List(sel)
	if err != nil {
		return false, err
	}
	oldUIDs := map[string]bool{}
	for _, rs := range old {
		oldUIDs[string(rs.UID)] = true
	}
	for _, p := range pods {
		ref := metav1.GetControllerOf(p)
		if ref == nil || !oldUIDs[string(ref.UID)] || (newRS != nil && ref.UID == newRS.UID) {
			continue
		}
		if p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
			return true, nil
		}
	}
	return false, nil
}
