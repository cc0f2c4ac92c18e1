package persistentvolume

import (
	"context"
	"fmt"
	"slices"

	storagehelpers "k8s.io/component-helpers/storage/volume"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func (c *controller) syncVolume(ctx context.Context, name string) error {
	pv, err := c.volumes.Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("volume %s: %w", name, err)
	}
	pv = pv.DeepCopy()
	if done, err := c.protectVolume(ctx, pv); done || err != nil {
		return err
	}
	ref := pv.Spec.ClaimRef
	if ref == nil {
		return c.setVolumePhase(ctx, pv, corev1.VolumeAvailable, "")
	}
	if ref.UID == "" {
		// Reserved for a claim by name, not yet bound: the claim's sync
		// binds it.
		c.claimQueue.EnqueueKey(ref.Namespace + "/" + ref.Name)
		return c.setVolumePhase(ctx, pv, corev1.VolumeAvailable, "")
	}
	claim, err := c.boundClaim(ctx, pv)
	if err != nil {
		return err
	}
	switch {
	case claim == nil:
		return c.release(ctx, pv)
	case claim.Spec.VolumeName == "":
		// Bound (by this controller, the scheduler or a provisioner) and
		// the claim not yet: the claim's sync finishes.
		c.claimQueue.EnqueueKey(claim.Namespace + "/" + claim.Name)
		return nil
	case claim.Spec.VolumeName == pv.Name:
		return c.setVolumePhase(ctx, pv, corev1.VolumeBound, "")
	case pv.Annotations[storagehelpers.AnnDynamicallyProvisioned] != "" && pv.Spec.PersistentVolumeReclaimPolicy == corev1.PersistentVolumeReclaimDelete:
		// Provisioned for a claim that got another volume: not needed.
		return c.release(ctx, pv)
	case pv.Annotations[storagehelpers.AnnBoundByController] != "":
		// The claim went elsewhere; give the volume back.
		pv.Spec.ClaimRef = nil
		delete(pv.Annotations, storagehelpers.AnnBoundByController)
		updated, err := c.client.CoreV1().PersistentVolumes().Update(ctx, pv, metav1.UpdateOptions{})
		if err != nil {
			return fmt.Errorf("unbinding volume %s: %w", pv.Name, err)
		}
		return c.setVolumePhase(ctx, updated, corev1.VolumeAvailable, "")
	}
	return nil // bound by a user to a claim bound elsewhere: wait for the claim
}

// boundClaim is the claim the volume's claimRef names, or nil when that
// claim is gone (or replaced by another of the same name). A claim missing
// from the cache is looked up on the server before the volume is released
// on its word.
func (c *controller) boundClaim(ctx context.Context, pv *corev1.PersistentVolume) (*corev1.PersistentVolumeClaim, error) {
	ref := pv.Spec.ClaimRef
	claim, err := c.claims.PersistentVolumeClaims(ref.Namespace).Get(ref.Name)
	if apierrors.IsNotFound(err) {
		claim, err = c.client.CoreV1().PersistentVolumeClaims(ref.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
	}
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("volume %s: claim %s/%s: %w", pv.Name, ref.Namespace, ref.Name, err)
	}
	if claim.UID != ref.UID {
		return nil, nil
	}
	return claim, nil
}

// release marks a volume whose claim is gone Released and applies its
// reclaim policy: Retain keeps it; Delete is the provisioner's work for a
// provisioned volume (the node's local-path provisioner removes the data
// and the object); anything else cannot be reclaimed here.
func (c *controller) release(ctx context.Context, pv *corev1.PersistentVolume) error {
	if pv.Status.Phase == corev1.VolumeFailed {
		return nil
	}
	if err := c.setVolumePhase(ctx, pv, corev1.VolumeReleased, ""); err != nil {
		return err
	}
	switch pv.Spec.PersistentVolumeReclaimPolicy {
	case corev1.PersistentVolumeReclaimRetain:
		return nil
	case corev1.PersistentVolumeReclaimDelete:
		if pv.Annotations[storagehelpers.AnnDynamicallyProvisioned] != "" {
			return nil
		}
		msg := fmt.Sprintf("error getting deleter volume plugin for volume %q: no deletable volume plugin matched", pv.Name)
		c.recorder.Event(pv, corev1.EventTypeWarning, "VolumeFailedDelete", msg)
		return c.setVolumePhase(ctx, pv, corev1.VolumeFailed, msg)
	default:
		msg := fmt.Sprintf("no volume plugin matched name: recycling volume %q is not supported", pv.Name)
		c.recorder.Event(pv, corev1.EventTypeWarning, "VolumeFailedRecycle", msg)
		return c.setVolumePhase(ctx, pv, corev1.VolumeFailed, msg)
	}
}

// protectVolume keeps the pv-protection finalizer: added to every live
// volume, removed from a deleted one once it is not Bound.
func (c *controller) protectVolume(ctx context.Context, pv *corev1.PersistentVolume) (done bool, err error) {
	has := slices.Contains(pv.Finalizers, PVProtectionFinalizer)
	switch {
	case pv.DeletionTimestamp == nil && !has:
		pv.Finalizers = append(pv.Finalizers, PVProtectionFinalizer)
	case pv.DeletionTimestamp != nil && has && pv.Status.Phase != corev1.VolumeBound:
		pv.Finalizers = slices.DeleteFunc(pv.Finalizers, func(f string) bool { return f == PVProtectionFinalizer })
	default:
		return false, nil
	}
	_, err = c.client.CoreV1().PersistentVolumes().Update(ctx, pv, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) {
		err = nil
	}
	if err != nil {
		err = fmt.Errorf("volume %s finalizer: %w", pv.Name, err)
	}
	return true, err
}

// setVolumePhase writes a new phase (and its transition time), with the
// message of a failure.
func (c *controller) setVolumePhase(ctx context.Context, pv *corev1.PersistentVolume, phase corev1.PersistentVolumePhase, msg string) error {
	if pv.Status.Phase == phase && pv.Status.Message == msg {
		return nil
	}
	if pv.Status.Phase != phase {
		now := metav1.Now()
		pv.Status.LastPhaseTransitionTime = &now
	}
	pv.Status.Phase, pv.Status.Message = phase, msg
	updated, err := c.client.CoreV1().PersistentVolumes().UpdateStatus(ctx, pv, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("volume %s phase %s: %w", pv.Name, phase, err)
	}
	*pv = *updated
	return nil
}
