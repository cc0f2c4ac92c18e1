package job

import (
	"context"
	"errors"
	"fmt"
	"slices"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

func hasFinalizer(p *corev1.Pod) bool { return slices.Contains(p.Finalizers, trackingFinalizer) }

// podOutcome says whether a pod has ended and whether it succeeded. A pod
// being deleted before it finished counts as failed, as upstream, unless
// the Job is already finishing and deleted it itself.
func podOutcome(p *corev1.Pod, finishing bool) (done, succeeded bool) {
	switch {
	case p.Status.Phase == corev1.PodSucceeded:
		return true, true
	case p.Status.Phase == corev1.PodFailed:
		return true, false
	case p.DeletionTimestamp != nil && !finishing:
		return true, false
	}
	return false, false
}

func (c *controller) countedFor(k string) map[types.UID]bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.counted[k]
	if m == nil {
		m = map[types.UID]bool{}
		c.counted[k] = m
	}
	return m
}

func (c *controller) isCounted(k string, uid types.UID) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.counted[k][uid]
}

func (c *controller) markCounted(k string, uid types.UID) {
	c.countedFor(k)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.counted[k][uid] = true
}

// forgetCounted drops remembered UIDs once the informer shows their pods
// without the finalizer (or not at all): from then on the cache itself
// says they were counted.
func (c *controller) forgetCounted(k string, pods []*corev1.Pod, uncounted *batchv1.UncountedTerminatedPods) {
	byUID := map[types.UID]*corev1.Pod{}
	for _, p := range pods {
		byUID[p.UID] = p
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for uid := range c.counted[k] {
		if slices.Contains(uncounted.Succeeded, uid) || slices.Contains(uncounted.Failed, uid) {
			continue
		}
		if p, ok := byUID[uid]; !ok || !hasFinalizer(p) {
			delete(c.counted[k], uid)
		}
	}
}

// removeFinalizers takes the tracking finalizer off pods, with the patch
// upstream uses.
// A non-nil count selects the pods being counted, whose UIDs are then
// remembered; uncounted selects pods let go without counting.
func (c *controller) removeFinalizers(ctx context.Context, k string, pods []*corev1.Pod, count, uncounted func(*corev1.Pod) bool) error {
	patch := []byte(fmt.Sprintf(`{"metadata":{"$deleteFromPrimitiveList/finalizers":[%q]}}`, trackingFinalizer))
	var errs []error
	for _, p := range pods {
		if !hasFinalizer(p) || (count != nil && !count(p)) || (uncounted != nil && !uncounted(p)) {
			continue
		}
		_, err := c.client.CoreV1().Pods(p.Namespace).Patch(ctx, p.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("removing finalizer of pod %s: %w", p.Name, err))
			continue
		}
		if count != nil {
			c.markCounted(k, p.UID)
		}
	}
	return errors.Join(errs...)
}

// track counts finished pods in three durable steps (see the package doc)
// and returns the Job as last written.
func (c *controller) track(ctx context.Context, k string, job *batchv1.Job, pods []*corev1.Pod, finishing bool) (*batchv1.Job, error) {
	st := job.Status.DeepCopy()
	if st.UncountedTerminatedPods == nil {
		st.UncountedTerminatedPods = &batchv1.UncountedTerminatedPods{}
	}
	unc := st.UncountedTerminatedPods
	c.forgetCounted(k, pods, unc)
	if finishing {
		// Pods the Job deleted while finishing are not counted; they only
		// need to be let go.
		if err := c.removeFinalizers(ctx, k, pods, nil, func(p *corev1.Pod) bool {
			done, _ := podOutcome(p, true)
			return p.DeletionTimestamp != nil && !done
		}); err != nil {
			return nil, err
		}
	}
	indexed := isIndexed(job)
	completed := parseIndexes(st.CompletedIndexes)
	added := false
	for _, p := range pods {
		if !hasFinalizer(p) || c.isCounted(k, p.UID) ||
			slices.Contains(unc.Succeeded, p.UID) || slices.Contains(unc.Failed, p.UID) {
			continue
		}
		done, ok := podOutcome(p, finishing)
		if !done {
			continue
		}
		added = true
		if !ok {
			unc.Failed = append(unc.Failed, p.UID)
			continue
		}
		unc.Succeeded = append(unc.Succeeded, p.UID)
		if idx, valid := podIndex(p, job); indexed && valid {
			completed[idx] = true
		}
	}
	if indexed {
		st.CompletedIndexes = formatIndexes(completed)
		st.Succeeded = int32(len(completed))
	}
	var err error
	if added {
		if job, err = c.writeStatus(ctx, job, st); err != nil {
			return nil, err
		}
		st = job.Status.DeepCopy()
		unc = st.UncountedTerminatedPods
	}
	if len(unc.Succeeded)+len(unc.Failed) == 0 {
		return job, nil
	}
	inUncounted := func(p *corev1.Pod) bool {
		return slices.Contains(unc.Succeeded, p.UID) || slices.Contains(unc.Failed, p.UID)
	}
	if err := c.removeFinalizers(ctx, k, pods, inUncounted, nil); err != nil {
		return nil, err
	}
	present := map[types.UID]bool{}
	for _, p := range pods {
		present[p.UID] = hasFinalizer(p) && !c.isCounted(k, p.UID)
	}
	var keepS, keepF []types.UID
	for _, uid := range unc.Succeeded {
		if present[uid] {
			keepS = append(keepS, uid)
		} else if !indexed {
			st.Succeeded++
		}
	}
	for _, uid := range unc.Failed {
		if present[uid] {
			keepF = append(keepF, uid)
		} else {
			st.Failed++
		}
	}
	unc.Succeeded, unc.Failed = keepS, keepF
	return c.writeStatus(ctx, job, st)
}
