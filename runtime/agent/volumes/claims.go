package volumes

import (
	"context"
	"errors"
	"fmt"
	"os"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// ClaimSource gives the PersistentVolumeClaims pods name and the
// PersistentVolumes bound to them. A missing object is reported with a
// NotFound error, as for Sources.
type ClaimSource interface {
	PersistentVolumeClaim(ctx context.Context, namespace, name string) (*corev1.PersistentVolumeClaim, error)
	PersistentVolume(ctx context.Context, name string) (*corev1.PersistentVolume, error)
}

// WithClaims makes persistentVolumeClaim volumes work. Without it, a pod
// with such a volume fails to set up.
func WithClaims(cs ClaimSource) Option {
	return func(m *Manager) { m.claims = cs }
}

// ErrClaimNotBound is matched (errors.Is) by the error of a volume whose
// claim is missing, not bound yet, or whose volume is not there yet. The
// pod waits: it can start once the claim is bound.
var ErrClaimNotBound = errors.New("persistent volume claim not bound")

// setupClaim resolves claim -> bound volume -> its directory on this
// node. The volume is that directory itself, as for hostPath; the
// container mount is read-only when the pod's volume says so.
func (m *Manager) setupClaim(ctx context.Context, pod *corev1.Pod, src *corev1.PersistentVolumeClaimVolumeSource) (Mount, error) {
	if m.claims == nil {
		return Mount{}, errors.New("persistentVolumeClaim volumes are not supported by this node")
	}
	ref := pod.Namespace + "/" + src.ClaimName
	claim, err := m.claims.PersistentVolumeClaim(ctx, pod.Namespace, src.ClaimName)
	if apierrors.IsNotFound(err) || (err == nil && claim == nil) {
		return Mount{}, fmt.Errorf("%w: error processing PVC %s: persistentvolumeclaim %q not found", ErrClaimNotBound, ref, src.ClaimName)
	}
	if err != nil {
		return Mount{}, fmt.Errorf("error processing PVC %s: %w", ref, err)
	}
	// A claim being deleted may not be used by a pod that has not started
	// yet; a running pod keeps it (pvc-protection holds it until then).
	if claim.DeletionTimestamp != nil && pod.Status.StartTime == nil {
		return Mount{}, fmt.Errorf("error processing PVC %s: can't start pod because PVC %s is being deleted", ref, ref)
	}
	if claim.Status.Phase != corev1.ClaimBound || claim.Spec.VolumeName == "" {
		return Mount{}, fmt.Errorf("%w: error processing PVC %s: PVC is not bound", ErrClaimNotBound, ref)
	}
	pv, err := m.claims.PersistentVolume(ctx, claim.Spec.VolumeName)
	if apierrors.IsNotFound(err) || (err == nil && pv == nil) {
		return Mount{}, fmt.Errorf("%w: error processing PVC %s: persistentvolume %q not found", ErrClaimNotBound, ref, claim.Spec.VolumeName)
	}
	if err != nil {
		return Mount{}, fmt.Errorf("error processing PVC %s: failed to fetch PV %s from API server: %w", ref, claim.Spec.VolumeName, err)
	}
	if r := pv.Spec.ClaimRef; r == nil || r.UID != claim.UID {
		return Mount{}, fmt.Errorf("%w: error processing PVC %s: the PV %s is not bound to it", ErrClaimNotBound, ref, pv.Name)
	}
	var mnt Mount
	switch {
	case pv.Spec.HostPath != nil:
		mnt, err = setupHostPath(pv.Spec.HostPath)
	case pv.Spec.Local != nil:
		// A local volume must already exist, as kubelet requires.
		if _, err = os.Stat(pv.Spec.Local.Path); err == nil {
			mnt = Mount{HostPath: pv.Spec.Local.Path}
		}
	default:
		return Mount{}, fmt.Errorf("PV %s: volume type %q is not supported by this node", pv.Name, sourceKind(pv.Spec.PersistentVolumeSource))
	}
	if err != nil {
		return Mount{}, fmt.Errorf("PV %s: %w", pv.Name, err)
	}
	mnt.ReadOnly = src.ReadOnly
	return mnt, nil
}
