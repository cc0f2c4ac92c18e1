package persistentvolume

import (
	"slices"

	storagehelpers "k8s.io/component-helpers/storage/volume"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
)

// The binding and provisioning annotations and the class lookups are
// upstream's, from k8s.io/component-helpers/storage/volume; these are the
// names it does not have.
const (
	// NoProvisioner is the provisioner of classes whose volumes are only
	// ever created by hand (local volumes).
	NoProvisioner = "kubernetes.io/no-provisioner"

	PVCProtectionFinalizer = "kubernetes.io/pvc-protection"
	PVProtectionFinalizer  = "kubernetes.io/pv-protection"
)

// IsDelayBinding says whether the claim's class waits for a first
// consumer (volumeBindingMode WaitForFirstConsumer).
func IsDelayBinding(claim *corev1.PersistentVolumeClaim, class *storagev1.StorageClass) bool {
	if class == nil || storagehelpers.GetPersistentVolumeClaimClass(claim) == "" {
		return false
	}
	return class.VolumeBindingMode != nil && *class.VolumeBindingMode == storagev1.VolumeBindingWaitForFirstConsumer
}

// isPreBoundTo says whether the volume's claimRef names this claim (by UID
// when the reference has one).
func isPreBoundTo(pv *corev1.PersistentVolume, claim *corev1.PersistentVolumeClaim) bool {
	ref := pv.Spec.ClaimRef
	if ref == nil || ref.Name != claim.Name || ref.Namespace != claim.Namespace {
		return false
	}
	return ref.UID == "" || ref.UID == claim.UID
}

// Matches says whether pv can serve claim, ignoring who it is bound to:
// same class, every requested access mode, enough capacity, the claim's
// selector, the same volume mode, and (when node is given) node affinity
// allowing that node.
func Matches(claim *corev1.PersistentVolumeClaim, pv *corev1.PersistentVolume, node *corev1.Node) bool {
	if storagehelpers.GetPersistentVolumeClass(pv) != storagehelpers.GetPersistentVolumeClaimClass(claim) || storagehelpers.CheckVolumeModeMismatches(&claim.Spec, &pv.Spec) {
		return false
	}
	for _, m := range claim.Spec.AccessModes {
		if !slices.Contains(pv.Spec.AccessModes, m) {
			return false
		}
	}
	want := claim.Spec.Resources.Requests[corev1.ResourceStorage]
	have := pv.Spec.Capacity[corev1.ResourceStorage]
	if have.Cmp(want) < 0 {
		return false
	}
	if claim.Spec.Selector != nil {
		sel, err := metav1.LabelSelectorAsSelector(claim.Spec.Selector)
		if err != nil || !sel.Matches(labels.Set(pv.Labels)) {
			return false
		}
	}
	if node != nil && !NodeAllowed(pv, node) {
		return false
	}
	return true
}

// NodeAllowed says whether the volume's node affinity lets node use it.
func NodeAllowed(pv *corev1.PersistentVolume, node *corev1.Node) bool {
	if pv.Spec.NodeAffinity == nil || pv.Spec.NodeAffinity.Required == nil {
		return true
	}
	ok, err := nodeaffinity.NewLazyErrorNodeSelector(pv.Spec.NodeAffinity.Required).Match(node)
	return err == nil && ok
}

// FindBestMatch returns the smallest volume that can serve the claim, as
// upstream's binder chooses, or nil. A volume pre-bound to the claim wins
// over any other. With delayBinding, volumes not pre-bound are skipped:
// the scheduler picks those once a pod's node is known. node, when not
// nil, must be allowed by the volume's node affinity.
func FindBestMatch(claim *corev1.PersistentVolumeClaim, volumes []*corev1.PersistentVolume, delayBinding bool, node *corev1.Node) *corev1.PersistentVolume {
	var best *corev1.PersistentVolume
	for _, pv := range volumes {
		if pv.DeletionTimestamp != nil || !Matches(claim, pv, node) {
			continue
		}
		if isPreBoundTo(pv, claim) {
			return pv
		}
		if pv.Spec.ClaimRef != nil || pv.Status.Phase != corev1.VolumeAvailable && pv.Status.Phase != "" && pv.Status.Phase != corev1.VolumePending {
			continue
		}
		if delayBinding {
			continue
		}
		if best == nil || smaller(pv, best) {
			best = pv
		}
	}
	return best
}

func smaller(a, b *corev1.PersistentVolume) bool {
	qa, qb := a.Spec.Capacity[corev1.ResourceStorage], b.Spec.Capacity[corev1.ResourceStorage]
	if c := qa.Cmp(qb); c != 0 {
		return c < 0
	}
	return a.Name < b.Name
}
