package statefulset

import (
	"context"
	"fmt"
	"sort"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func startOrdinal(set *appsv1.StatefulSet) int {
	if set.Spec.Ordinals != nil {
		return int(set.Spec.Ordinals.Start)
	}
	return 0
}

func replicaCount(set *appsv1.StatefulSet) int {
	if set.Spec.Replicas == nil {
		return 1
	}
	return int(*set.Spec.Replicas)
}

func partition(set *appsv1.StatefulSet) int {
	ru := set.Spec.UpdateStrategy.RollingUpdate
	if set.Spec.UpdateStrategy.Type != appsv1.RollingUpdateStatefulSetStrategyType || ru == nil || ru.Partition == nil {
		return 0
	}
	return int(*ru.Partition)
}

// split sorts the set's pods into the replicas it should have (indexed from
// the start ordinal, nil where missing) and the condemned ones beyond the
// replica count, highest ordinal first.
func split(set *appsv1.StatefulSet, pods []*corev1.Pod) (replicas, condemned []*corev1.Pod) {
	start, n := startOrdinal(set), replicaCount(set)
	replicas = make([]*corev1.Pod, n)
	for _, p := range pods {
		ord := ordinal(set, p)
		switch {
		case ord < 0:
		case ord >= start && ord < start+n:
			replicas[ord-start] = p
		default:
			condemned = append(condemned, p)
		}
	}
	sort.Slice(condemned, func(i, j int) bool { return ordinal(set, condemned[i]) > ordinal(set, condemned[j]) })
	return replicas, condemned
}

// update performs the next steps towards the declared replicas, in
// upstream's order: missing or failed replicas first (in ordinal order),
// then condemned pods (highest first), then the rolling update. With
// OrderedReady, each step that leaves a pod not yet Running and Ready ends
// the sync; that pod's next status change brings the next sync.
func (c *controller) update(ctx context.Context, set *appsv1.StatefulSet, pods []*corev1.Pod, cur, upd *appsv1.ControllerRevision) error {
	monotonic := set.Spec.PodManagementPolicy != appsv1.ParallelPodManagement
	replicas, condemned := split(set, pods)
	start := startOrdinal(set)
	part := partition(set)
	for i, p := range replicas {
		ord := start + i
		switch {
		case p == nil:
			rev := upd
			if set.Spec.UpdateStrategy.Type == appsv1.RollingUpdateStatefulSetStrategyType && i < part {
				rev = cur
			}
			if err := c.createPod(ctx, set, rev, ord); err != nil {
				return err
			}
			if monotonic {
				return nil
			}
			continue
		case p.Status.Phase == corev1.PodFailed || p.Status.Phase == corev1.PodSucceeded:
			// A replica that ended is replaced under the same identity.
			if p.DeletionTimestamp == nil {
				if err := c.deletePod(ctx, set, p); err != nil {
					return err
				}
			}
			if monotonic {
				return nil
			}
			continue
		case p.DeletionTimestamp != nil:
			if monotonic {
				return nil
			}
			continue
		}
		if err := c.ensureClaims(ctx, set, ord); err != nil {
			return err
		}
		if monotonic && !runningAndReady(p) {
			return nil
		}
	}
	for _, p := range condemned {
		if p.DeletionTimestamp != nil {
			if monotonic {
				return nil
			}
			continue
		}
		if err := c.deletePod(ctx, set, p); err != nil {
			return err
		}
		if monotonic {
			return nil
		}
	}
	if set.Spec.UpdateStrategy.Type != appsv1.RollingUpdateStatefulSetStrategyType {
		return nil
	}
	for i := len(replicas) - 1; i >= part; i-- {
		p := replicas[i]
		if p == nil {
			return nil
		}
		if p.Labels[appsv1.StatefulSetRevisionLabel] != upd.Name && p.DeletionTimestamp == nil {
			return c.deletePod(ctx, set, p)
		}
		if !runningAndReady(p) {
			return nil
		}
	}
	return nil
}

func (c *controller) computeStatus(set *appsv1.StatefulSet, pods []*corev1.Pod, cur, upd *appsv1.ControllerRevision) appsv1.StatefulSetStatus {
	st := appsv1.StatefulSetStatus{
		ObservedGeneration: set.Generation,
		CurrentRevision:    cur.Name,
		UpdateRevision:     upd.Name,
		CollisionCount:     set.Status.CollisionCount,
		Conditions:         set.Status.Conditions,
	}
	now := c.now()
	for _, p := range pods {
		if ordinal(set, p) < 0 {
			continue
		}
		if p.Status.Phase != "" {
			st.Replicas++
		}
		if runningAndReady(p) {
			st.ReadyReplicas++
			if ok, left := available(p, set.Spec.MinReadySeconds, now); ok {
				st.AvailableReplicas++
			} else if left > 0 {
				c.ctrl.EnqueueAfter(set.Namespace+"/"+set.Name, left)
			}
		}
		if p.Status.Phase == "" || p.DeletionTimestamp != nil {
			continue
		}
		if p.Labels[appsv1.StatefulSetRevisionLabel] == cur.Name {
			st.CurrentReplicas++
		}
		if p.Labels[appsv1.StatefulSetRevisionLabel] == upd.Name {
			st.UpdatedReplicas++
		}
	}
	// A finished rollout makes the update revision the current one.
	want := int32(replicaCount(set))
	if st.UpdatedReplicas == want && st.ReadyReplicas == want && st.Replicas == want {
		st.CurrentRevision, st.CurrentReplicas = upd.Name, st.UpdatedReplicas
	}
	return st
}

func (c *controller) writeStatus(ctx context.Context, set *appsv1.StatefulSet, st *appsv1.StatefulSetStatus) error {
	if apiequality.Semantic.DeepEqual(st, &set.Status) {
		return nil
	}
	fresh := set.DeepCopy()
	fresh.Status = *st
	_, err := c.client.AppsV1().StatefulSets(set.Namespace).UpdateStatus(ctx, fresh, metav1.UpdateOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("statefulset %s/%s status: %w", set.Namespace, set.Name, err)
	}
	return nil
}
