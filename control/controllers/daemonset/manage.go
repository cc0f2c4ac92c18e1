package daemonset

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/kubectl/pkg/util/podutils"
)

// podsByNode groups the DaemonSet's live pods (not being deleted) by the
// node they are for, oldest first, so that index 0 is the pod that stays.
func podsByNode(pods []*corev1.Pod) map[string][]*corev1.Pod {
	m := map[string][]*corev1.Pod{}
	for _, p := range pods {
		if p.DeletionTimestamp == nil {
			n := targetNode(p)
			m[n] = append(m[n], p)
		}
	}
	for _, ps := range m {
		sort.SliceStable(ps, func(i, j int) bool {
			return ps[i].CreationTimestamp.Before(&ps[j].CreationTimestamp)
		})
	}
	return m
}

// manage creates the missing daemon pods and deletes the ones that must
// go. It reports whether it changed anything: the rolling update waits for
// a sync in which the set of pods is settled.
func (c *controller) manage(ctx context.Context, ds *appsv1.DaemonSet, nodes []*corev1.Node, pods []*corev1.Pod, hash string) error {
	byNode := podsByNode(pods)
	known := map[string]bool{}
	var create []string
	var del []*corev1.Pod
	for _, node := range nodes {
		known[node.Name] = true
		run, keep := shouldRun(ds, node)
		ps := byNode[node.Name]
		if !keep {
			del = append(del, ps...)
			continue
		}
		var alive []*corev1.Pod
		for _, p := range ps {
			if p.Status.Phase == corev1.PodFailed {
				// Daemon pods restart always; a failed one is replaced.
				c.recorder.Eventf(ds, corev1.EventTypeWarning, "FailedDaemonPod",
					"Found failed daemon pod %s/%s on node %s, will try to kill it", p.Namespace, p.Name, node.Name)
				del = append(del, p)
				continue
			}
			alive = append(alive, p)
		}
		switch {
		case len(alive) == 0 && len(ps) == 0 && run:
			create = append(create, node.Name)
		case len(alive) > 1:
			del = append(del, alive[1:]...)
		}
	}
	for n, ps := range byNode {
		if !known[n] {
			// The node is gone (or the pod names none): nothing will run it.
			del = append(del, ps...)
		}
	}
	k := key(ds.Namespace, ds.Name)
	if len(del) > 0 {
		// One kind of change per sync keeps the expectations exact; the
		// creations follow once the deletions have been observed.
		return c.deletePods(ctx, ds, del)
	}
	if len(create) == 0 {
		return nil
	}
	c.exp.ExpectCreations(k, len(create))
	var errs []error
	for _, node := range create {
		pod, err := c.client.CoreV1().Pods(ds.Namespace).Create(ctx, newPod(ds, node, hash), metav1.CreateOptions{})
		if err != nil {
			c.exp.CreationObserved(k)
			c.recorder.Eventf(ds, corev1.EventTypeWarning, "FailedCreate", "Error creating: %v", err)
			errs = append(errs, fmt.Errorf("creating daemon pod for node %s: %w", node, err))
			continue
		}
		c.recorder.Eventf(ds, corev1.EventTypeNormal, "SuccessfulCreate", "Created pod: %v", pod.Name)
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	return errSettling
}

// errSettling is not a failure: it tells sync that pods were just created
// and the rolling update must wait for them to be observed.
var errSettling = errors.New("settling")

func (c *controller) deletePods(ctx context.Context, ds *appsv1.DaemonSet, del []*corev1.Pod) error {
	k := key(ds.Namespace, ds.Name)
	keys := make([]string, 0, len(del))
	for _, p := range del {
		keys = append(keys, key(p.Namespace, p.Name))
	}
	c.exp.ExpectDeletions(k, keys)
	var errs []error
	for _, p := range del {
		err := c.client.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{
			Preconditions: &metav1.Preconditions{UID: &p.UID},
		})
		if err != nil {
			c.exp.DeletionObserved(k, key(p.Namespace, p.Name))
			if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
				continue
			}
			c.recorder.Eventf(ds, corev1.EventTypeWarning, "FailedDelete", "Error deleting: %v", err)
			errs = append(errs, fmt.Errorf("deleting pod %s: %w", p.Name, err))
			continue
		}
		c.recorder.Eventf(ds, corev1.EventTypeNormal, "SuccessfulDelete", "Deleted pod: %v", p.Name)
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	return errSettling
}

// rollingUpdate deletes pods of old revisions while at most maxUnavailable
// of the nodes that should run the daemon lack an available one. Old pods
// that are unavailable anyway are deleted without counting.
func (c *controller) rollingUpdate(ctx context.Context, ds *appsv1.DaemonSet, nodes []*corev1.Node, pods []*corev1.Pod, hash string) error {
	byNode := podsByNode(pods)
	now := c.now()
	var desired int
	var unavailable int
	var oldAvailable, del []*corev1.Pod
	for _, node := range nodes {
		if run, keep := shouldRun(ds, node); !run && !keep {
			continue
		} else if run {
			desired++
		}
		ps := byNode[node.Name]
		if len(ps) == 0 {
			unavailable++
			continue
		}
		p := ps[0]
		avail := podAvailable(p, ds.Spec.MinReadySeconds, now)
		switch {
		case p.Labels[appsv1.DefaultDaemonSetUniqueLabelKey] == hash:
			if !avail {
				unavailable++
			}
		case !avail:
			del = append(del, p)
		default:
			oldAvailable = append(oldAvailable, p)
		}
	}
	budget := 1
	if ru := ds.Spec.UpdateStrategy.RollingUpdate; ru != nil && ru.MaxUnavailable != nil {
		v, err := intstr.GetScaledValueFromIntOrPercent(ru.MaxUnavailable, desired, true)
		if err != nil {
			return fmt.Errorf("maxUnavailable: %w", err)
		}
		budget = max(v, 1)
	}
	for _, p := range oldAvailable {
		if unavailable >= budget {
			break
		}
		del = append(del, p)
		unavailable++
	}
	if len(del) == 0 {
		return nil
	}
	return c.deletePods(ctx, ds, del)
}

func (c *controller) updateStatus(ctx context.Context, ds *appsv1.DaemonSet, nodes []*corev1.Node, pods []*corev1.Pod, hash string) error {
	byNode := podsByNode(pods)
	now := c.now()
	st := ds.Status.DeepCopy()
	st.DesiredNumberScheduled, st.CurrentNumberScheduled, st.NumberMisscheduled = 0, 0, 0
	st.NumberReady, st.NumberAvailable, st.UpdatedNumberScheduled = 0, 0, 0
	for _, node := range nodes {
		run, _ := shouldRun(ds, node)
		ps := byNode[node.Name]
		if !run {
			if len(ps) > 0 {
				st.NumberMisscheduled++
			}
			continue
		}
		st.DesiredNumberScheduled++
		if len(ps) == 0 {
			continue
		}
		st.CurrentNumberScheduled++
		p := ps[0]
		if podutils.IsPodReady(p) {
			st.NumberReady++
			if podAvailable(p, ds.Spec.MinReadySeconds, now) {
				st.NumberAvailable++
			}
		}
		if hash != "" && p.Labels[appsv1.DefaultDaemonSetUniqueLabelKey] == hash {
			st.UpdatedNumberScheduled++
		}
	}
	st.NumberUnavailable = st.DesiredNumberScheduled - st.NumberAvailable
	st.ObservedGeneration = ds.Generation
	if st.NumberReady > st.NumberAvailable {
		c.ctrl.EnqueueAfter(key(ds.Namespace, ds.Name), time.Second)
	}
	if apiequality.Semantic.DeepEqual(st, &ds.Status) {
		return nil
	}
	upd := ds.DeepCopy()
	upd.Status = *st
	if _, err := c.client.AppsV1().DaemonSets(ds.Namespace).UpdateStatus(ctx, upd, metav1.UpdateOptions{}); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("daemonset %s/%s status: %w", ds.Namespace, ds.Name, err)
	}
	return nil
}
