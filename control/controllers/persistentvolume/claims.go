package persistentvolume

import (
	"context"
	"fmt"
	"slices"

	storagehelpers "k8s.io/component-helpers/storage/volume"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/cache"
)

func (c *controller) syncClaim(ctx context.Context, key string) error {
	namespace, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	claim, err := c.claims.PersistentVolumeClaims(namespace).Get(name)
	if apierrors.IsNotFound(err) {
		return nil // its volume's sync releases the volume
	}
	if err != nil {
		return fmt.Errorf("claim %s: %w", key, err)
	}
	claim = claim.DeepCopy()
	if done, err := c.protectClaim(ctx, claim); done || err != nil {
		return err
	}
	if claim.DeletionTimestamp != nil {
		return nil
	}
	if claim.Annotations[storagehelpers.AnnBindCompleted] == "" {
		return c.syncUnboundClaim(ctx, claim)
	}
	return c.syncBoundClaim(ctx, claim)
}

// protectClaim keeps the pvc-protection finalizer: added to every live
// claim, removed from a deleted claim once no scheduled, running pod uses
// it. done means the claim was written and its next event continues.
func (c *controller) protectClaim(ctx context.Context, claim *corev1.PersistentVolumeClaim) (done bool, err error) {
	has := slices.Contains(claim.Finalizers, PVCProtectionFinalizer)
	switch {
	case claim.DeletionTimestamp == nil && !has:
		claim.Finalizers = append(claim.Finalizers, PVCProtectionFinalizer)
	case claim.DeletionTimestamp != nil && has:
		used, err := c.claimInUse(claim)
		if err == nil && !used {
			// The pod informer may not have seen a pod created a moment
			// ago; as upstream's pvc-protection controller does, the API
			// server has the last word before the finalizer goes.
			used, err = c.claimInUseLive(ctx, claim)
		}
		if err != nil || used {
			return true, err
		}
		claim.Finalizers = slices.DeleteFunc(claim.Finalizers, func(f string) bool { return f == PVCProtectionFinalizer })
	default:
		return false, nil
	}
	_, err = c.client.CoreV1().PersistentVolumeClaims(claim.Namespace).Update(ctx, claim, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) {
		err = nil
	}
	if err != nil {
		err = fmt.Errorf("claim %s/%s finalizer: %w", claim.Namespace, claim.Name, err)
	}
	return true, err
}

// claimInUse is upstream's rule, on the informer's pods: a pod uses a
// claim from the moment it is scheduled until it has terminated.
func (c *controller) claimInUse(claim *corev1.PersistentVolumeClaim) (bool, error) {
	pods, err := c.pods.Pods(claim.Namespace).List(labels.Everything())
	if err != nil {
		return false, err
	}
	return podsUse(pods, claim), nil
}

// claimInUseLive is claimInUse on a list from the API server.
func (c *controller) claimInUseLive(ctx context.Context, claim *corev1.PersistentVolumeClaim) (bool, error) {
	list, err := c.client.CoreV1().Pods(claim.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return false, fmt.Errorf("pods of %s using claim %s: %w", claim.Namespace, claim.Name, err)
	}
	pods := make([]*corev1.Pod, len(list.Items))
	for i := range list.Items {
		pods[i] = &list.Items[i]
	}
	return podsUse(pods, claim), nil
}

func podsUse(pods []*corev1.Pod, claim *corev1.PersistentVolumeClaim) bool {
	for _, p := range pods {
		if p.Spec.NodeName == "" || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		for _, v := range p.Spec.Volumes {
			if v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName == claim.Name {
				return true
			}
		}
	}
	return false
}

func (c *controller) syncUnboundClaim(ctx context.Context, claim *corev1.PersistentVolumeClaim) error {
	if claim.Spec.VolumeName != "" {
		return c.syncPreBoundClaim(ctx, claim)
	}
	sc, err := c.class(claim)
	if err != nil {
		return err
	}
	delay := IsDelayBinding(claim, sc)
	volumes, err := c.volumes.List(labels.Everything())
	if err != nil {
		return err
	}
	if pv := FindBestMatch(claim, volumes, delay, nil); pv != nil {
		return c.bind(ctx, pv.DeepCopy(), claim)
	}
	switch {
	case delay && claim.Annotations[storagehelpers.AnnSelectedNode] == "":
		c.recorder.Event(claim, corev1.EventTypeNormal, "WaitForFirstConsumer", "waiting for first consumer to be created before binding")
	case storagehelpers.GetPersistentVolumeClaimClass(claim) != "":
		if err := c.provision(ctx, claim, sc); err != nil {
			return err
		}
	default:
		c.recorder.Event(claim, corev1.EventTypeNormal, "FailedBinding", "no persistent volumes available for this claim and no storage class is set")
	}
	return c.setClaimPhase(ctx, claim, corev1.ClaimPending)
}

// syncPreBoundClaim binds a claim that names its volume, if the volume is
// free or already reserved for it.
func (c *controller) syncPreBoundClaim(ctx context.Context, claim *corev1.PersistentVolumeClaim) error {
	pv, err := c.volumes.Get(claim.Spec.VolumeName)
	if apierrors.IsNotFound(err) {
		return c.setClaimPhase(ctx, claim, corev1.ClaimPending) // it may be created later
	}
	if err != nil {
		return err
	}
	if pv.Spec.ClaimRef == nil || isPreBoundTo(pv, claim) {
		if !Matches(claim, pv, nil) {
			c.recorder.Eventf(claim, corev1.EventTypeWarning, "VolumeMismatch",
				"Cannot bind to requested volume %q: it does not satisfy the claim's class, access modes, size, selector or volume mode", pv.Name)
			return c.setClaimPhase(ctx, claim, corev1.ClaimPending)
		}
		return c.bind(ctx, pv.DeepCopy(), claim)
	}
	c.recorder.Eventf(claim, corev1.EventTypeWarning, "FailedBinding", "volume %q already bound to a different claim.", pv.Name)
	return c.setClaimPhase(ctx, claim, corev1.ClaimPending)
}

func (c *controller) syncBoundClaim(ctx context.Context, claim *corev1.PersistentVolumeClaim) error {
	if claim.Spec.VolumeName == "" {
		if claim.Status.Phase != corev1.ClaimLost {
			c.recorder.Event(claim, corev1.EventTypeWarning, "ClaimLost", "Bound claim has lost reference to PersistentVolume. Data on the volume is lost!")
		}
		return c.setClaimPhase(ctx, claim, corev1.ClaimLost)
	}
	pv, err := c.volumes.Get(claim.Spec.VolumeName)
	if apierrors.IsNotFound(err) {
		if claim.Status.Phase != corev1.ClaimLost {
			c.recorder.Event(claim, corev1.EventTypeWarning, "ClaimLost", "Bound claim has lost its PersistentVolume. Data on the volume is lost!")
		}
		return c.setClaimPhase(ctx, claim, corev1.ClaimLost)
	}
	if err != nil {
		return err
	}
	if ref := pv.Spec.ClaimRef; ref == nil || ref.UID == claim.UID ||
		(ref.UID == "" && ref.Namespace == claim.Namespace && ref.Name == claim.Name) {
		return c.bind(ctx, pv.DeepCopy(), claim)
	}
	if claim.Status.Phase != corev1.ClaimLost {
		c.recorder.Event(claim, corev1.EventTypeWarning, "ClaimMisbound", "Two claims are bound to the same volume, this one is bound incorrectly")
	}
	return c.setClaimPhase(ctx, claim, corev1.ClaimLost)
}

// provision hands the claim to its class's provisioner. Every provisioner
// is external here: the node agents' local-path provisioner, or another
// running against the API; the claim is annotated for it.
func (c *controller) provision(ctx context.Context, claim *corev1.PersistentVolumeClaim, sc *storagev1.StorageClass) error {
	if sc == nil {
		c.recorder.Eventf(claim, corev1.EventTypeWarning, "ProvisioningFailed", "storageclass.storage.k8s.io %q not found", storagehelpers.GetPersistentVolumeClaimClass(claim))
		return nil
	}
	if sc.Provisioner == NoProvisioner {
		c.recorder.Eventf(claim, corev1.EventTypeWarning, "ProvisioningFailed", "no volume plugin matched name: %s", sc.Provisioner)
		return nil
	}
	if claim.Annotations[storagehelpers.AnnStorageProvisioner] == sc.Provisioner && claim.Annotations[storagehelpers.AnnBetaStorageProvisioner] == sc.Provisioner {
		return nil
	}
	if claim.Annotations == nil {
		claim.Annotations = map[string]string{}
	}
	claim.Annotations[storagehelpers.AnnStorageProvisioner] = sc.Provisioner
	claim.Annotations[storagehelpers.AnnBetaStorageProvisioner] = sc.Provisioner
	updated, err := c.client.CoreV1().PersistentVolumeClaims(claim.Namespace).Update(ctx, claim, metav1.UpdateOptions{})
	if err != nil {
		return fmt.Errorf("claim %s/%s: annotating for provisioner %s: %w", claim.Namespace, claim.Name, sc.Provisioner, err)
	}
	*claim = *updated
	c.recorder.Eventf(claim, corev1.EventTypeNormal, "ExternalProvisioning",
		"Waiting for a volume to be created either by the external provisioner '%s' or manually by the system administrator. If volume creation is delayed, please verify that the provisioner is running and correctly registered.", sc.Provisioner)
	return nil
}

// bind ties volume and claim together in upstream's order: the volume's
// claimRef, the volume's phase, the claim's volumeName and annotations,
// the claim's status. Each step is skipped when already done, so a bind
// interrupted halfway is finished by the next sync.
func (c *controller) bind(ctx context.Context, pv *corev1.PersistentVolume, claim *corev1.PersistentVolumeClaim) error {
	core := c.client.CoreV1()
	if ref := pv.Spec.ClaimRef; ref == nil || ref.UID != claim.UID || ref.Name != claim.Name || ref.Namespace != claim.Namespace {
		pv.Spec.ClaimRef = &corev1.ObjectReference{
			Kind: "PersistentVolumeClaim", APIVersion: "v1", Namespace: claim.Namespace, Name: claim.Name,
			UID: claim.UID, ResourceVersion: claim.ResourceVersion,
		}
		metav1.SetMetaDataAnnotation(&pv.ObjectMeta, storagehelpers.AnnBoundByController, "yes")
		updated, err := core.PersistentVolumes().Update(ctx, pv, metav1.UpdateOptions{})
		if err != nil {
			return fmt.Errorf("binding volume %s to claim %s/%s: %w", pv.Name, claim.Namespace, claim.Name, err)
		}
		pv = updated
	}
	if err := c.setVolumePhase(ctx, pv, corev1.VolumeBound, ""); err != nil {
		return err
	}
	if claim.Spec.VolumeName != pv.Name || claim.Annotations[storagehelpers.AnnBindCompleted] == "" {
		if claim.Spec.VolumeName == "" {
			metav1.SetMetaDataAnnotation(&claim.ObjectMeta, storagehelpers.AnnBoundByController, "yes")
		}
		claim.Spec.VolumeName = pv.Name
		metav1.SetMetaDataAnnotation(&claim.ObjectMeta, storagehelpers.AnnBindCompleted, "yes")
		updated, err := core.PersistentVolumeClaims(claim.Namespace).Update(ctx, claim, metav1.UpdateOptions{})
		if err != nil {
			return fmt.Errorf("binding claim %s/%s to volume %s: %w", claim.Namespace, claim.Name, pv.Name, err)
		}
		claim = updated
	}
	st := claim.Status
	if st.Phase == corev1.ClaimBound && slices.Equal(st.AccessModes, pv.Spec.AccessModes) && equalCapacity(st.Capacity, pv.Spec.Capacity) {
		return nil
	}
	claim.Status.Phase = corev1.ClaimBound
	claim.Status.AccessModes = pv.Spec.AccessModes
	claim.Status.Capacity = pv.Spec.Capacity.DeepCopy()
	if _, err := core.PersistentVolumeClaims(claim.Namespace).UpdateStatus(ctx, claim, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("claim %s/%s status: %w", claim.Namespace, claim.Name, err)
	}
	return nil
}

func equalCapacity(a, b corev1.ResourceList) bool {
	if len(a) != len(b) {
		return false
	}
	for k, q := range a {
		if o, ok := b[k]; !ok || o.Cmp(q) != 0 {
			return false
		}
	}
	return true
}

func (c *controller) setClaimPhase(ctx context.Context, claim *corev1.PersistentVolumeClaim, phase corev1.PersistentVolumeClaimPhase) error {
	if claim.Status.Phase == phase {
		return nil
	}
	claim.Status.Phase = phase
	if phase == corev1.ClaimPending {
		claim.Status.Capacity, claim.Status.AccessModes = nil, nil
	}
	_, err := c.client.CoreV1().PersistentVolumeClaims(claim.Namespace).UpdateStatus(ctx, claim, metav1.UpdateOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("claim %s/%s phase %s: %w", claim.Namespace, claim.Name, phase, err)
	}
	return nil
}
