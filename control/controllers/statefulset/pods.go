package statefulset

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/wasmkube/wasmkube/control/controllers/history"
)

// ordinal parses "<set>-<n>"; -1 means the pod's name is not one of the set's.
func ordinal(set *appsv1.StatefulSet, pod *corev1.Pod) int {
	rest, ok := strings.CutPrefix(pod.Name, set.Name+"-")
	if !ok || rest == "" {
		return -1
	}
	n, err := strconv.Atoi(rest)
	if err != nil || n < 0 || strconv.Itoa(n) != rest {
		return -1
	}
	return n
}

func podName(set *appsv1.StatefulSet, ord int) string { return fmt.Sprintf("%s-%d", set.Name, ord) }

func claimName(tmpl *corev1.PersistentVolumeClaim, set *appsv1.StatefulSet, ord int) string {
	return fmt.Sprintf("%s-%s-%d", tmpl.Name, set.Name, ord)
}

// newPod is replica ord at revision rev: stable name, hostname and
// subdomain, the identity labels, and its claims mounted.
func newPod(set *appsv1.StatefulSet, rev *appsv1.ControllerRevision, ord int) (*corev1.Pod, error) {
	tmpl, err := history.Template(rev)
	if err != nil {
		return nil, err
	}
	name := podName(set, ord)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: set.Namespace, Labels: map[string]string{}, Annotations: tmpl.Annotations,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(set, setKind)},
		},
		Spec: tmpl.Spec,
	}
	for k, v := range tmpl.Labels {
		pod.Labels[k] = v
	}
	pod.Labels[appsv1.StatefulSetPodNameLabel] = name
	pod.Labels[appsv1.PodIndexLabel] = strconv.Itoa(ord)
	pod.Labels[appsv1.StatefulSetRevisionLabel] = rev.Name
	pod.Spec.Hostname = name
	pod.Spec.Subdomain = set.Spec.ServiceName
	for i := range set.Spec.VolumeClaimTemplates {
		t := &set.Spec.VolumeClaimTemplates[i]
		vol := corev1.Volume{Name: t.Name, VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claimName(t, set, ord)},
		}}
		replaced := false
		for j := range pod.Spec.Volumes {
			if pod.Spec.Volumes[j].Name == t.Name {
				pod.Spec.Volumes[j], replaced = vol, true
			}
		}
		if !replaced {
			pod.Spec.Volumes = append(pod.Spec.Volumes, vol)
		}
	}
	return pod, nil
}

// ensureClaims creates the replica's missing claims. They carry no owner:
// under the Retain policy they outlive the pod and the set, so that a
// recreated replica finds its data.
func (c *controller) ensureClaims(ctx context.Context, set *appsv1.StatefulSet, ord int) error {
	pod := podName(set, ord)
	for i := range set.Spec.VolumeClaimTemplates {
		t := &set.Spec.VolumeClaimTemplates[i]
		name := claimName(t, set, ord)
		if _, err := c.claims.PersistentVolumeClaims(set.Namespace).Get(name); err == nil {
			continue
		}
		claim := &corev1.PersistentVolumeClaim{
			ObjectMeta: metav1.ObjectMeta{
				Name: name, Namespace: set.Namespace, Labels: map[string]string{}, Annotations: t.Annotations,
			},
			Spec: *t.Spec.DeepCopy(),
		}
		for k, v := range t.Labels {
			claim.Labels[k] = v
		}
		if set.Spec.Selector != nil {
			for k, v := range set.Spec.Selector.MatchLabels {
				claim.Labels[k] = v
			}
		}
		_, err := c.client.CoreV1().PersistentVolumeClaims(set.Namespace).Create(ctx, claim, metav1.CreateOptions{})
		switch {
		case apierrors.IsAlreadyExists(err):
		case err != nil:
			c.recorder.Eventf(set, corev1.EventTypeWarning, "FailedCreate",
				"create Claim %s for Pod %s in StatefulSet %s failed error: %s", name, pod, set.Name, err)
			return fmt.Errorf("creating claim %s: %w", name, err)
		default:
			c.recorder.Eventf(set, corev1.EventTypeNormal, "SuccessfulCreate",
				"create Claim %s Pod %s in StatefulSet %s success", name, pod, set.Name)
		}
	}
	return nil
}

func (c *controller) createPod(ctx context.Context, set *appsv1.StatefulSet, rev *appsv1.ControllerRevision, ord int) error {
	if err := c.ensureClaims(ctx, set, ord); err != nil {
		return err
	}
	pod, err := newPod(set, rev, ord)
	if err != nil {
		return err
	}
	_, err = c.client.CoreV1().Pods(set.Namespace).Create(ctx, pod, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return nil // our cache is behind; the pod's event brings a new sync
	}
	if err != nil {
		c.recorder.Eventf(set, corev1.EventTypeWarning, "FailedCreate",
			"create Pod %s in StatefulSet %s failed error: %s", pod.Name, set.Name, err)
		return fmt.Errorf("creating pod %s: %w", pod.Name, err)
	}
	c.recorder.Eventf(set, corev1.EventTypeNormal, "SuccessfulCreate",
		"create Pod %s in StatefulSet %s successful", pod.Name, set.Name)
	return nil
}

func (c *controller) deletePod(ctx context.Context, set *appsv1.StatefulSet, pod *corev1.Pod) error {
	err := c.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
		Preconditions: &metav1.Preconditions{UID: &pod.UID},
	})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil
	}
	if err != nil {
		c.recorder.Eventf(set, corev1.EventTypeWarning, "FailedDelete",
			"delete Pod %s in StatefulSet %s failed error: %s", pod.Name, set.Name, err)
		return fmt.Errorf("deleting pod %s: %w", pod.Name, err)
	}
	c.recorder.Eventf(set, corev1.EventTypeNormal, "SuccessfulDelete",
		"delete Pod %s in StatefulSet %s successful", pod.Name, set.Name)
	return nil
}

func runningAndReady(p *corev1.Pod) bool {
	if p.Status.Phase != corev1.PodRunning || p.DeletionTimestamp != nil {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// available is Ready for at least minReadySeconds; readyFor says how long
// is left when it is not yet.
func available(p *corev1.Pod, minReady int32, now time.Time) (bool, time.Duration) {
	if !runningAndReady(p) {
		return false, 0
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			left := c.LastTransitionTime.Add(time.Duration(minReady) * time.Second).Sub(now)
			return left <= 0, left
		}
	}
	return false, 0
}
