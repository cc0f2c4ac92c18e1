package validation

import (
	"fmt"
	"path"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

var supportedAccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadOnlyMany, corev1.ReadWriteMany, corev1.ReadWriteOnce, corev1.ReadWriteOncePod}

func validateAccessModes(modes []corev1.PersistentVolumeAccessMode, requiredMsg string, p *field.Path) field.ErrorList {
	if len(modes) == 0 {
		return field.ErrorList{field.Required(p, requiredMsg)}
	}
	var allErrs field.ErrorList
	rwop := false
	for _, m := range modes {
		ok := false
		for _, s := range supportedAccessModes {
			ok = ok || s == m
		}
		if !ok {
			allErrs = append(allErrs, field.NotSupported(p, m, supportedAccessModes))
		}
		rwop = rwop || m == corev1.ReadWriteOncePod
	}
	if rwop && len(modes) > 1 {
		allErrs = append(allErrs, field.Forbidden(p, "may not use ReadWriteOncePod with other access modes"))
	}
	return allErrs
}

func validateVolumeMode(mode *corev1.PersistentVolumeMode, p *field.Path) field.ErrorList {
	if mode != nil && *mode != corev1.PersistentVolumeBlock && *mode != corev1.PersistentVolumeFilesystem {
		return field.ErrorList{field.NotSupported(p, *mode, []corev1.PersistentVolumeMode{corev1.PersistentVolumeBlock, corev1.PersistentVolumeFilesystem})}
	}
	return nil
}

// ValidatePersistentVolume validates a PersistentVolume on create.
func ValidatePersistentVolume(pv *corev1.PersistentVolume) field.ErrorList {
	allErrs := ValidateObjectMeta(&pv.ObjectMeta, false, nameDNSSubdomain, metaPath())
	spec := &pv.Spec
	p := field.NewPath("spec")
	allErrs = append(allErrs, validateAccessModes(spec.AccessModes, "", p.Child("accessModes"))...)
	if len(spec.Capacity) == 0 {
		allErrs = append(allErrs, field.Required(p.Child("capacity"), ""))
	}
	if _, ok := spec.Capacity[corev1.ResourceStorage]; len(spec.Capacity) > 0 && (!ok || len(spec.Capacity) > 1) {
		allErrs = append(allErrs, field.NotSupported(p.Child("capacity"), sortedResourceNames(spec.Capacity), []corev1.ResourceName{corev1.ResourceStorage}))
	}
	for _, k := range sortedResourceNames(spec.Capacity) {
		q := spec.Capacity[k]
		if q.Value() < 0 {
			allErrs = append(allErrs, field.Invalid(p.Child("capacity").Key(string(k)), q.Value(), "must be a valid resource quantity"))
		}
		allErrs = append(allErrs, validateResourceQuantity(k, q, p.Child("capacity").Key(string(k)))...)
	}
	if rp := spec.PersistentVolumeReclaimPolicy; rp != "" && rp != corev1.PersistentVolumeReclaimRetain &&
		rp != corev1.PersistentVolumeReclaimRecycle && rp != corev1.PersistentVolumeReclaimDelete {
		allErrs = append(allErrs, field.NotSupported(p.Child("persistentVolumeReclaimPolicy"), rp,
			[]corev1.PersistentVolumeReclaimPolicy{corev1.PersistentVolumeReclaimDelete, corev1.PersistentVolumeReclaimRecycle, corev1.PersistentVolumeReclaimRetain}))
	}
	if spec.StorageClassName != "" {
		allErrs = append(allErrs, validateNameRef(spec.StorageClassName, nameDNSSubdomain, p.Child("storageClassName"))...)
	}
	allErrs = append(allErrs, validateVolumeMode(spec.VolumeMode, p.Child("volumeMode"))...)
	if spec.NodeAffinity != nil {
		if spec.NodeAffinity.Required == nil {
			allErrs = append(allErrs, field.Required(p.Child("nodeAffinity", "required"), "must specify required node constraints"))
		} else {
			allErrs = append(allErrs, validateNodeSelector(spec.NodeAffinity.Required, p.Child("nodeAffinity", "required"))...)
		}
	}
	return append(allErrs, validatePVSource(&spec.PersistentVolumeSource, spec.NodeAffinity != nil, p)...)
}

// validatePVSource requires exactly one source; the common local ones are
// checked in depth.
func validatePVSource(src *corev1.PersistentVolumeSource, hasAffinity bool, p *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	set := []struct {
		name string
		on   bool
	}{
		{"hostPath", src.HostPath != nil}, {"gcePersistentDisk", src.GCEPersistentDisk != nil},
		{"awsElasticBlockStore", src.AWSElasticBlockStore != nil}, {"glusterfs", src.Glusterfs != nil},
		{"flocker", src.Flocker != nil}, {"nfs", src.NFS != nil}, {"rbd", src.RBD != nil},
		{"quobyte", src.Quobyte != nil}, {"cinder", src.Cinder != nil}, {"cephFS", src.CephFS != nil},
		{"fc", src.FC != nil}, {"flexVolume", src.FlexVolume != nil}, {"azureFile", src.AzureFile != nil},
		{"vsphereVolume", src.VsphereVolume != nil}, {"photonPersistentDisk", src.PhotonPersistentDisk != nil},
		{"portworxVolume", src.PortworxVolume != nil}, {"azureDisk", src.AzureDisk != nil},
		{"scaleIO", src.ScaleIO != nil}, {"local", src.Local != nil}, {"storageos", src.StorageOS != nil},
		{"csi", src.CSI != nil}, {"iscsi", src.ISCSI != nil},
	}
	n := 0
	for _, s := range set {
		if !s.on {
			continue
		}
		if n > 0 {
			allErrs = append(allErrs, field.Forbidden(p.Child(s.name), "may not specify more than 1 volume type"))
			continue
		}
		n++
	}
	if n == 0 {
		return append(allErrs, field.Required(p, "must specify a volume type"))
	}
	switch {
	case src.HostPath != nil:
		allErrs = append(allErrs, validateHostPath(src.HostPath, p.Child("hostPath"))...)
	case src.NFS != nil:
		if src.NFS.Server == "" {
			allErrs = append(allErrs, field.Required(p.Child("nfs", "server"), ""))
		}
		if src.NFS.Path == "" {
			allErrs = append(allErrs, field.Required(p.Child("nfs", "path"), ""))
		} else if !path.IsAbs(src.NFS.Path) {
			allErrs = append(allErrs, field.Invalid(p.Child("nfs", "path"), src.NFS.Path, "must be an absolute path"))
		}
	case src.Local != nil:
		if src.Local.Path == "" {
			allErrs = append(allErrs, field.Required(p.Child("local", "path"), ""))
		} else {
			allErrs = append(allErrs, validatePathNoBacksteps(src.Local.Path, p.Child("local", "path"))...)
		}
		if !hasAffinity {
			allErrs = append(allErrs, field.Required(p.Child("nodeAffinity"), "Local volume requires node affinity"))
		}
	case src.CSI != nil:
		if src.CSI.Driver == "" {
			allErrs = append(allErrs, field.Required(p.Child("csi", "driver"), ""))
		} else {
			allErrs = append(allErrs, validateCSIDriverName(src.CSI.Driver, p.Child("csi", "driver"))...)
		}
		if src.CSI.VolumeHandle == "" {
			allErrs = append(allErrs, field.Required(p.Child("csi", "volumeHandle"), ""))
		}
	}
	return allErrs
}

// ValidatePersistentVolumeUpdate validates a PV update: the volume source
// and mode are fixed at creation.
func ValidatePersistentVolumeUpdate(pv, old *corev1.PersistentVolume) field.ErrorList {
	allErrs := ValidatePersistentVolume(pv)
	allErrs = append(allErrs, ValidateObjectMetaUpdate(&pv.ObjectMeta, &old.ObjectMeta, metaPath())...)
	if !apiequality.Semantic.DeepEqual(pv.Spec.PersistentVolumeSource, old.Spec.PersistentVolumeSource) {
		diff := cmp.Diff(old.Spec.PersistentVolumeSource, pv.Spec.PersistentVolumeSource)
		allErrs = append(allErrs, field.Forbidden(field.NewPath("spec", "persistentvolumesource"), fmt.Sprintf("spec.persistentvolumesource is immutable after creation\n%v", diff)))
	}
	allErrs = append(allErrs, validateImmutable(pv.Spec.VolumeMode, old.Spec.VolumeMode, field.NewPath("volumeMode"))...)
	if old.Spec.NodeAffinity != nil && !apiequality.Semantic.DeepEqual(pv.Spec.NodeAffinity, old.Spec.NodeAffinity) {
		allErrs = append(allErrs, field.Invalid(field.NewPath("spec", "nodeAffinity"), pv.Spec.NodeAffinity, fieldImmutableErrorMsg+", except for updating from beta label to GA"))
	}
	return allErrs
}

// ValidatePersistentVolumeClaim validates a PVC on create.
func ValidatePersistentVolumeClaim(pvc *corev1.PersistentVolumeClaim) field.ErrorList {
	allErrs := ValidateObjectMeta(&pvc.ObjectMeta, true, nameDNSSubdomain, metaPath())
	return append(allErrs, validatePVCSpec(&pvc.Spec, field.NewPath("spec"))...)
}

func validatePVCSpec(spec *corev1.PersistentVolumeClaimSpec, p *field.Path) field.ErrorList {
	allErrs := validateAccessModes(spec.AccessModes, "at least 1 access mode is required", p.Child("accessModes"))
	if spec.Selector != nil {
		allErrs = append(allErrs, validateLabelSelector(spec.Selector, p.Child("selector"))...)
	}
	storagePath := p.Child("resources").Key(string(corev1.ResourceStorage))
	if q, ok := spec.Resources.Requests[corev1.ResourceStorage]; !ok {
		allErrs = append(allErrs, field.Required(storagePath, ""))
	} else if q.Cmp(resource.Quantity{}) <= 0 {
		allErrs = append(allErrs, field.Invalid(storagePath, q.String(), "must be greater than zero"))
	} else {
		allErrs = append(allErrs, validateResourceQuantity(corev1.ResourceStorage, q, storagePath)...)
	}
	if spec.StorageClassName != nil && *spec.StorageClassName != "" {
		allErrs = append(allErrs, validateNameRef(*spec.StorageClassName, nameDNSSubdomain, p.Child("storageClassName"))...)
	}
	return append(allErrs, validateVolumeMode(spec.VolumeMode, p.Child("volumeMode"))...)
}

// ValidatePersistentVolumeClaimUpdate validates a PVC update: the spec is
// fixed except for binding once (volumeName), growing (or, after a failed
// expansion, shrinking back toward status.capacity) the storage request of a
// bound claim, and the volume attributes class.
func ValidatePersistentVolumeClaimUpdate(pvc, old *corev1.PersistentVolumeClaim) field.ErrorList {
	allErrs := ValidateObjectMetaUpdate(&pvc.ObjectMeta, &old.ObjectMeta, metaPath())
	allErrs = append(allErrs, ValidatePersistentVolumeClaim(pvc)...)
	newSpec, oldSpec := pvc.Spec.DeepCopy(), old.Spec.DeepCopy()
	if oldSpec.VolumeName == "" {
		oldSpec.VolumeName = newSpec.VolumeName
	}
	if pvc.Status.Phase == corev1.ClaimBound && newSpec.Resources.Requests != nil {
		if q, ok := old.Spec.Resources.Requests[corev1.ResourceStorage]; ok {
			newSpec.Resources.Requests[corev1.ResourceStorage] = q
		} else {
			delete(newSpec.Resources.Requests, corev1.ResourceStorage)
		}
	}
	newSpec.VolumeAttributesClassName = oldSpec.VolumeAttributesClassName
	if !apiequality.Semantic.DeepEqual(newSpec, oldSpec) {
		diff := cmp.Diff(*oldSpec, *newSpec)
		allErrs = append(allErrs, field.Forbidden(field.NewPath("spec"), fmt.Sprintf("spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims\n%v", diff)))
	}
	oldSize := old.Spec.Resources.Requests[corev1.ResourceStorage]
	newSize := pvc.Spec.Resources.Requests[corev1.ResourceStorage]
	statusSize := old.Status.Capacity[corev1.ResourceStorage]
	if newSize.Cmp(oldSize) < 0 && newSize.Cmp(statusSize) <= 0 {
		allErrs = append(allErrs, field.Forbidden(field.NewPath("spec", "resources", "requests", "storage"), "field can not be less than status.capacity"))
	}
	return append(allErrs, validateImmutable(pvc.Spec.VolumeMode, old.Spec.VolumeMode, field.NewPath("volumeMode"))...)
}
