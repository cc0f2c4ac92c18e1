package replicaset

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/kubectl/pkg/util/podutils"
	"k8s.io/utils/ptr"
)

// manageReplicas creates or deletes pods to reach spec.replicas.
func (c *controller) manageReplicas(ctx context.Context, pods []*corev1.Pod, rs *appsv1.ReplicaSet, k string) error {
	diff := len(pods) - int(ptr.Deref(rs.Spec.Replicas, 1))
	switch {
	case diff < 0:
		n := min(-diff, burstReplicas)
		c.exp.ExpectCreations(k, n)
		created, err := slowStartBatch(n, 1, func() error {
			err := c.createPod(ctx, rs)
			if err != nil && apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
				// The namespace is going away: nothing to create, and
				// nothing to retry.
				return nil
			}
			return err
		})
		// Creations never attempted or failed will never be observed.
		for range n - created {
			c.exp.CreationObserved(k)
		}
		return err
	case diff > 0:
		n := min(diff, burstReplicas)
		victims := podsToDelete(pods, n)
		keys := make([]string, len(victims))
		for i, p := range victims {
			keys[i] = key(p.Namespace, p.Name)
		}
		c.exp.ExpectDeletions(k, keys)
		var wg sync.WaitGroup
		errs := make([]error, len(victims))
		for i, p := range victims {
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := c.client.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{})
				if err != nil && !apierrors.IsNotFound(err) {
					c.exp.DeletionObserved(k, keys[i])
					c.recorder.Eventf(rs, corev1.EventTypeWarning, "FailedDelete", "Error deleting: %v", err)
					errs[i] = fmt.Errorf("deleting pod %s: %w", keys[i], err)
					return
				}
				if err != nil {
					c.exp.DeletionObserved(k, keys[i])
					return
				}
				c.recorder.Eventf(rs, corev1.EventTypeNormal, "SuccessfulDelete", "Deleted pod: %s", p.Name)
			}()
		}
		wg.Wait()
		return errors.Join(errs...)
	}
	return nil
}

func (c *controller) createPod(ctx context.Context, rs *appsv1.ReplicaSet) error {
	pod := PodFromTemplate(&rs.Spec.Template, rs, rsKind.GroupVersion().String(), rsKind.Kind)
	created, err := c.client.CoreV1().Pods(rs.Namespace).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		if !apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
			c.recorder.Eventf(rs, corev1.EventTypeWarning, "FailedCreate", "Error creating: %v", err)
		}
		return fmt.Errorf("creating pod for %s/%s: %w", rs.Namespace, rs.Name, err)
	}
	c.recorder.Eventf(rs, corev1.EventTypeNormal, "SuccessfulCreate", "Created pod: %s", created.Name)
	return nil
}

// PodFromTemplate builds a pod for a controller from its template, named
// "<owner>-<random>" and controlled by the owner.
func PodFromTemplate(t *corev1.PodTemplateSpec, owner metav1.Object, apiVersion, kind string) *corev1.Pod {
	prefix := owner.GetName() + "-"
	if len(validation.IsDNS1123Subdomain(prefix+"abcde")) != 0 {
		prefix = owner.GetName()
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: prefix,
			Namespace:    owner.GetNamespace(),
			Labels:       copyMap(t.Labels),
			Annotations:  copyMap(t.Annotations),
			Finalizers:   append([]string(nil), t.Finalizers...),
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: apiVersion, Kind: kind, Name: owner.GetName(), UID: owner.GetUID(),
				Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true),
			}},
		},
		Spec: *t.Spec.DeepCopy(),
	}
	return pod
}

func copyMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// slowStartBatch calls fn count times in batches of 1, 2, 4, ... and stops
// at the first batch with a failure; it returns how many calls succeeded.
func slowStartBatch(count, initial int, fn func() error) (int, error) {
	remaining, done := count, 0
	for batch := min(remaining, initial); batch > 0; batch = min(2*batch, remaining) {
		var wg sync.WaitGroup
		errs := make(chan error, batch)
		for range batch {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := fn(); err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		done += batch - len(errs)
		if err := <-errs; err != nil {
			return done, err
		}
		remaining -= batch
	}
	return done, nil
}

// podsToDelete picks the n pods worth least, by upstream's ranking.
func podsToDelete(pods []*corev1.Pod, n int) []*corev1.Pod {
	if n >= len(pods) {
		return pods
	}
	// Pods doubled up on a node go first: removing them spreads the rest.
	perNode := map[string]int{}
	for _, p := range pods {
		if p.Spec.NodeName != "" {
			perNode[p.Spec.NodeName]++
		}
	}
	ranked := append([]*corev1.Pod(nil), pods...)
	now := time.Now()
	sort.SliceStable(ranked, func(i, j int) bool { return lessValuable(ranked[i], ranked[j], perNode, now) })
	return ranked[:n]
}

// lessValuable reports whether a should be deleted before b.
func lessValuable(a, b *corev1.Pod, perNode map[string]int, now time.Time) bool {
	// 1. unscheduled before scheduled
	if (a.Spec.NodeName == "") != (b.Spec.NodeName == "") {
		return a.Spec.NodeName == ""
	}
	// 2. pending < unknown < running
	phaseRank := map[corev1.PodPhase]int{corev1.PodPending: 0, corev1.PodUnknown: 1, corev1.PodRunning: 2}
	if phaseRank[a.Status.Phase] != phaseRank[b.Status.Phase] {
		return phaseRank[a.Status.Phase] < phaseRank[b.Status.Phase]
	}
	// 3. not ready before ready
	if podutils.IsPodReady(a) != podutils.IsPodReady(b) {
		return !podutils.IsPodReady(a)
	}
	// 4. more pods of the set on the same node first
	ra, rb := perNode[a.Spec.NodeName], perNode[b.Spec.NodeName]
	if a.Spec.NodeName != "" && b.Spec.NodeName != "" && ra != rb {
		return ra > rb
	}
	// 5. ready for less time first (upstream compares on a log scale)
	if podutils.IsPodReady(a) && podutils.IsPodReady(b) {
		ba, bb := logBucket(now.Sub(readySince(a))), logBucket(now.Sub(readySince(b)))
		if ba != bb {
			return ba < bb
		}
	}
	// 6. more restarts first
	if restarts(a) != restarts(b) {
		return restarts(a) > restarts(b)
	}
	// 7. newer first
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return a.CreationTimestamp.After(b.CreationTimestamp.Time)
	}
	return false
}

// logBucket groups durations by powers of two seconds, as upstream's
// LogarithmicScaleDownRanking does, so that pods of similar age are ranked
// by the later criteria rather than by a few milliseconds.
func logBucket(d time.Duration) int {
	s := int64(d / time.Second)
	b := 0
	for s > 0 {
		s >>= 1
		b++
	}
	return b
}

func readySince(p *corev1.Pod) time.Time {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.LastTransitionTime.Time
		}
	}
	return time.Time{}
}

func restarts(p *corev1.Pod) int32 {
	var n int32
	for _, cs := range p.Status.ContainerStatuses {
		n = max(n, cs.RestartCount)
	}
	return n
}

// PodAvailable reports whether a pod has been Ready for minReadySeconds.
func PodAvailable(p *corev1.Pod, minReadySeconds int32, now time.Time) bool {
	if !podutils.IsPodReady(p) {
		return false
	}
	if minReadySeconds == 0 {
		return true
	}
	since := readySince(p)
	return !since.IsZero() && !since.Add(time.Duration(minReadySeconds)*time.Second).After(now)
}

func (c *controller) calculateStatus(rs *appsv1.ReplicaSet, pods []*corev1.Pod, manageErr error) appsv1.ReplicaSetStatus {
	st := *rs.Status.DeepCopy()
	st.Replicas = int32(len(pods))
	st.FullyLabeledReplicas, st.ReadyReplicas, st.AvailableReplicas = 0, 0, 0
	templateLabels := labels.Set(rs.Spec.Template.Labels).AsSelectorPreValidated()
	now := c.now()
	for _, p := range pods {
		if templateLabels.Matches(labels.Set(p.Labels)) {
			st.FullyLabeledReplicas++
		}
		if podutils.IsPodReady(p) {
			st.ReadyReplicas++
			if PodAvailable(p, rs.Spec.MinReadySeconds, now) {
				st.AvailableReplicas++
			}
		}
	}
	st.ObservedGeneration = rs.Generation
	cond := failureCondition(rs, len(pods), manageErr)
	var conds []appsv1.ReplicaSetCondition
	for _, c := range st.Conditions {
		if c.Type != appsv1.ReplicaSetReplicaFailure {
			conds = append(conds, c)
		} else if cond != nil && c.Reason == cond.Reason {
			cond = &c // keep the first transition time
		}
	}
	if cond != nil {
		conds = append(conds, *cond)
	}
	st.Conditions = conds
	return st
}

// failureCondition is the ReplicaFailure condition for a failed
// manageReplicas, nil when it succeeded.
func failureCondition(rs *appsv1.ReplicaSet, pods int, err error) *appsv1.ReplicaSetCondition {
	if err == nil {
		return nil
	}
	reason := "FailedCreate"
	if pods > int(ptr.Deref(rs.Spec.Replicas, 1)) {
		reason = "FailedDelete"
	}
	return &appsv1.ReplicaSetCondition{
		Type: appsv1.ReplicaSetReplicaFailure, Status: corev1.ConditionTrue,
		Reason: reason, Message: err.Error(), LastTransitionTime: metav1.Now(),
	}
}

func (c *controller) updateStatus(ctx context.Context, rs *appsv1.ReplicaSet, st appsv1.ReplicaSetStatus) (*appsv1.ReplicaSet, error) {
	if apiequality.Semantic.DeepEqual(rs.Status, st) {
		return rs, nil
	}
	cp := rs.DeepCopy()
	cp.Status = st
	out, err := c.client.AppsV1().ReplicaSets(rs.Namespace).UpdateStatus(ctx, cp, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) {
		return rs, nil
	}
	if err != nil {
		return nil, fmt.Errorf("replicaset %s/%s status: %w", rs.Namespace, rs.Name, err)
	}
	return out, nil
}
