package validation

import (
	"fmt"
	"path"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

const fileModeErrorMsg = "must be a number between 0 and 0777 (octal), both inclusive"

func validateVolumes(volumes []corev1.Volume, podMeta *metav1.ObjectMeta, fldPath *field.Path) (map[string]corev1.VolumeSource, field.ErrorList) {
	var allErrs field.ErrorList
	names := sets.New[string]()
	vols := map[string]corev1.VolumeSource{}
	for i, v := range volumes {
		p := fldPath.Index(i)
		el := validateVolumeSource(&v.VolumeSource, p, v.Name, podMeta)
		if v.Name == "" {
			el = append(el, field.Required(p.Child("name"), ""))
		} else {
			el = append(el, validateDNS1123Label(v.Name, p.Child("name"))...)
		}
		if names.Has(v.Name) {
			el = append(el, field.Duplicate(p.Child("name"), v.Name))
		}
		// Only well-formed volumes become mount targets, so a broken volume
		// is not reported a second time through every mount.
		if len(el) == 0 {
			names.Insert(v.Name)
			vols[v.Name] = v.VolumeSource
		} else {
			allErrs = append(allErrs, el...)
		}
	}
	return vols, allErrs
}

// validateVolumeSource enforces exactly one source and checks the common
// ones in depth; the legacy in-tree cloud sources are only counted.
func validateVolumeSource(src *corev1.VolumeSource, p *field.Path, volName string, podMeta *metav1.ObjectMeta) field.ErrorList {
	var allErrs field.ErrorList
	n := 0
	add := func(set bool, name string, check func() field.ErrorList) {
		if !set {
			return
		}
		if n > 0 {
			allErrs = append(allErrs, field.Forbidden(p.Child(name), "may not specify more than 1 volume type"))
			return
		}
		n++
		if check != nil {
			allErrs = append(allErrs, check()...)
		}
	}
	add(src.EmptyDir != nil, "emptyDir", func() field.ErrorList {
		if src.EmptyDir.SizeLimit != nil && src.EmptyDir.SizeLimit.Cmp(resource.Quantity{}) < 0 {
			return field.ErrorList{field.Forbidden(p.Child("emptyDir", "sizeLimit"), "SizeLimit field must be a valid resource quantity")}
		}
		return nil
	})
	add(src.HostPath != nil, "hostPath", func() field.ErrorList { return validateHostPath(src.HostPath, p.Child("hostPath")) })
	add(src.GitRepo != nil, "gitRepo", func() field.ErrorList {
		if src.GitRepo.Repository == "" {
			return field.ErrorList{field.Required(p.Child("gitRepo", "repository"), "")}
		}
		return nil
	})
	add(src.GCEPersistentDisk != nil, "gcePersistentDisk", nil)
	add(src.AWSElasticBlockStore != nil, "awsElasticBlockStore", nil)
	add(src.Secret != nil, "secret", func() field.ErrorList {
		s := src.Secret
		sp := p.Child("secret")
		var errs field.ErrorList
		if s.SecretName == "" {
			errs = append(errs, field.Required(sp.Child("secretName"), ""))
		}
		errs = append(errs, validateDefaultMode(s.DefaultMode, sp.Child("defaultMode"))...)
		return append(errs, validateKeyToPaths(s.Items, sp.Child("items"))...)
	})
	add(src.NFS != nil, "nfs", func() field.ErrorList {
		var errs field.ErrorList
		if src.NFS.Server == "" {
			errs = append(errs, field.Required(p.Child("nfs", "server"), ""))
		}
		if src.NFS.Path == "" {
			errs = append(errs, field.Required(p.Child("nfs", "path"), ""))
		} else if !path.IsAbs(src.NFS.Path) {
			errs = append(errs, field.Invalid(p.Child("nfs", "path"), src.NFS.Path, "must be an absolute path"))
		}
		return errs
	})
	add(src.ISCSI != nil, "iscsi", nil)
	add(src.Glusterfs != nil, "glusterfs", nil)
	add(src.PersistentVolumeClaim != nil, "persistentVolumeClaim", func() field.ErrorList {
		if src.PersistentVolumeClaim.ClaimName == "" {
			return field.ErrorList{field.Required(p.Child("persistentVolumeClaim", "claimName"), "")}
		}
		return nil
	})
	add(src.RBD != nil, "rbd", nil)
	add(src.FlexVolume != nil, "flexVolume", nil)
	add(src.Cinder != nil, "cinder", nil)
	add(src.CephFS != nil, "cephFS", nil)
	add(src.Flocker != nil, "flocker", nil)
	add(src.DownwardAPI != nil, "downwardAPI", func() field.ErrorList {
		dp := p.Child("downwardAPI")
		errs := validateDefaultMode(src.DownwardAPI.DefaultMode, dp.Child("defaultMode"))
		return append(errs, validateDownwardAPIFiles(src.DownwardAPI.Items, dp)...)
	})
	add(src.FC != nil, "fc", nil)
	add(src.AzureFile != nil, "azureFile", nil)
	add(src.ConfigMap != nil, "configMap", func() field.ErrorList {
		c := src.ConfigMap
		cp := p.Child("configMap")
		var errs field.ErrorList
		if c.Name == "" {
			errs = append(errs, field.Required(cp.Child("name"), ""))
		}
		errs = append(errs, validateDefaultMode(c.DefaultMode, cp.Child("defaultMode"))...)
		return append(errs, validateKeyToPaths(c.Items, cp.Child("items"))...)
	})
	add(src.VsphereVolume != nil, "vsphereVolume", nil)
	add(src.Quobyte != nil, "quobyte", nil)
	add(src.AzureDisk != nil, "azureDisk", nil)
	add(src.PhotonPersistentDisk != nil, "photonPersistentDisk", nil)
	add(src.Projected != nil, "projected", func() field.ErrorList { return validateProjected(src.Projected, p.Child("projected")) })
	add(src.PortworxVolume != nil, "portworxVolume", nil)
	add(src.ScaleIO != nil, "scaleIO", nil)
	add(src.StorageOS != nil, "storageos", nil)
	add(src.CSI != nil, "csi", func() field.ErrorList {
		if src.CSI.Driver == "" {
			return field.ErrorList{field.Required(p.Child("csi", "driver"), "")}
		}
		return validateCSIDriverName(src.CSI.Driver, p.Child("csi", "driver"))
	})
	add(src.Ephemeral != nil, "ephemeral", func() field.ErrorList {
		if src.Ephemeral.VolumeClaimTemplate == nil {
			return field.ErrorList{field.Required(p.Child("ephemeral", "volumeClaimTemplate"), "")}
		}
		if podMeta != nil && podMeta.Name != "" && volName != "" {
			pvcName := podMeta.Name + "-" + volName
			var errs field.ErrorList
			for _, msg := range nameDNSSubdomain(pvcName, false) {
				errs = append(errs, field.Invalid(p.Child("name"), volName, fmt.Sprintf("PVC name %q: %v", pvcName, msg)))
			}
			return errs
		}
		return nil
	})
	add(src.Image != nil, "image", func() field.ErrorList {
		if src.Image.Reference == "" {
			return field.ErrorList{field.Required(p.Child("image", "reference"), "")}
		}
		return nil
	})
	if n == 0 {
		allErrs = append(allErrs, field.Required(p, "must specify a volume type"))
	}
	return allErrs
}

var hostPathTypes = []corev1.HostPathType{
	corev1.HostPathUnset, corev1.HostPathDirectoryOrCreate, corev1.HostPathDirectory, corev1.HostPathFileOrCreate,
	corev1.HostPathFile, corev1.HostPathSocket, corev1.HostPathCharDev, corev1.HostPathBlockDev,
}

func validateHostPath(hp *corev1.HostPathVolumeSource, p *field.Path) field.ErrorList {
	if hp.Path == "" {
		return field.ErrorList{field.Required(p.Child("path"), "")}
	}
	allErrs := validatePathNoBacksteps(hp.Path, p.Child("path"))
	if hp.Type != nil {
		ok := false
		for _, t := range hostPathTypes {
			ok = ok || t == *hp.Type
		}
		if !ok {
			allErrs = append(allErrs, field.NotSupported(p.Child("type"), *hp.Type, hostPathTypes))
		}
	}
	return allErrs
}

func validateDefaultMode(mode *int32, p *field.Path) field.ErrorList {
	if mode != nil && (*mode > 0777 || *mode < 0) {
		return field.ErrorList{field.Invalid(p, *mode, fileModeErrorMsg)}
	}
	return nil
}

func validateKeyToPaths(items []corev1.KeyToPath, p *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	for i, kp := range items {
		ip := p.Index(i)
		if kp.Key == "" {
			allErrs = append(allErrs, field.Required(ip.Child("key"), ""))
		}
		if kp.Path == "" {
			allErrs = append(allErrs, field.Required(ip.Child("path"), ""))
		}
		allErrs = append(allErrs, validateLocalNonReservedPath(kp.Path, ip.Child("path"))...)
		allErrs = append(allErrs, validateDefaultMode(kp.Mode, ip.Child("mode"))...)
	}
	return allErrs
}

func validateDownwardAPIFiles(items []corev1.DownwardAPIVolumeFile, p *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	for i, f := range items {
		ip := p.Child("items").Index(i)
		if f.Path == "" {
			allErrs = append(allErrs, field.Required(ip.Child("path"), ""))
		}
		allErrs = append(allErrs, validateLocalNonReservedPath(f.Path, ip.Child("path"))...)
		allErrs = append(allErrs, validateDefaultMode(f.Mode, ip.Child("mode"))...)
		switch {
		case f.FieldRef != nil && f.ResourceFieldRef != nil:
			allErrs = append(allErrs, field.Invalid(ip, "resource", "fieldRef and resourceFieldRef can not be specified simultaneously"))
		case f.FieldRef != nil:
			allErrs = append(allErrs, validateObjectFieldSelector(f.FieldRef, sets.New("metadata.name", "metadata.namespace", "metadata.labels", "metadata.annotations", "metadata.uid"), ip.Child("fieldRef"))...)
		case f.ResourceFieldRef != nil:
			allErrs = append(allErrs, validateResourceFieldSelector(f.ResourceFieldRef, true, ip.Child("resourceFieldRef"))...)
		default:
			allErrs = append(allErrs, field.Required(ip, "one of fieldRef and resourceFieldRef is required"))
		}
	}
	return allErrs
}

func validateProjected(pv *corev1.ProjectedVolumeSource, p *field.Path) field.ErrorList {
	allErrs := validateDefaultMode(pv.DefaultMode, p.Child("defaultMode"))
	for i, s := range pv.Sources {
		sp := p.Child("sources").Index(i)
		n := 0
		if s.Secret != nil {
			n++
			if s.Secret.Name == "" {
				allErrs = append(allErrs, field.Required(sp.Child("secret", "name"), ""))
			}
			allErrs = append(allErrs, validateKeyToPaths(s.Secret.Items, sp.Child("secret", "items"))...)
		}
		if s.ConfigMap != nil {
			n++
			if s.ConfigMap.Name == "" {
				allErrs = append(allErrs, field.Required(sp.Child("configMap", "name"), ""))
			}
			allErrs = append(allErrs, validateKeyToPaths(s.ConfigMap.Items, sp.Child("configMap", "items"))...)
		}
		if s.DownwardAPI != nil {
			n++
			allErrs = append(allErrs, validateDownwardAPIFiles(s.DownwardAPI.Items, sp.Child("downwardAPI"))...)
		}
		if t := s.ServiceAccountToken; t != nil {
			n++
			tp := sp.Child("serviceAccountToken")
			if t.ExpirationSeconds != nil && *t.ExpirationSeconds < 10*60 {
				allErrs = append(allErrs, field.Invalid(tp.Child("expirationSeconds"), *t.ExpirationSeconds, "may not specify a duration less than 10 minutes"))
			}
			if t.Path == "" {
				allErrs = append(allErrs, field.Required(tp.Child("path"), ""))
			}
		}
		if s.ClusterTrustBundle != nil {
			n++
		}
		if s.PodCertificate != nil {
			n++
		}
		if n != 1 {
			allErrs = append(allErrs, field.Forbidden(sp, "may not specify more than 1 volume type per source"))
		}
	}
	return allErrs
}

func validateCSIDriverName(name string, p *field.Path) field.ErrorList {
	if len(name) > 63 {
		return field.ErrorList{field.TooLong(p, name, 63)}
	}
	return validateDNS1123Subdomain(strings.ToLower(name), p)
}

func validatePathNoBacksteps(target string, p *field.Path) field.ErrorList {
	for _, item := range strings.Split(target, "/") {
		if item == ".." {
			return field.ErrorList{field.Invalid(p, target, "must not contain '..'")}
		}
	}
	return nil
}

func validateLocalDescendingPath(target string, p *field.Path) field.ErrorList {
	allErrs := field.ErrorList{}
	if path.IsAbs(target) {
		allErrs = append(allErrs, field.Invalid(p, target, "must be a relative path"))
	}
	return append(allErrs, validatePathNoBacksteps(target, p)...)
}

func validateLocalNonReservedPath(target string, p *field.Path) field.ErrorList {
	allErrs := validateLocalDescendingPath(target, p)
	if strings.HasPrefix(target, "..") && !strings.HasPrefix(target, "../") {
		allErrs = append(allErrs, field.Invalid(p, target, "must not start with '..'"))
	}
	return allErrs
}

func validateVolumeMounts(mounts []corev1.VolumeMount, devices map[string]string, vols map[string]corev1.VolumeSource, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	mountpoints := sets.New[string]()
	for i, m := range mounts {
		p := fldPath.Index(i)
		if m.Name == "" {
			allErrs = append(allErrs, field.Required(p.Child("name"), ""))
		}
		if _, ok := vols[m.Name]; !ok {
			allErrs = append(allErrs, field.NotFound(p.Child("name"), m.Name))
		}
		if m.MountPath == "" {
			allErrs = append(allErrs, field.Required(p.Child("mountPath"), ""))
		}
		if mountpoints.Has(m.MountPath) {
			allErrs = append(allErrs, field.Invalid(p.Child("mountPath"), m.MountPath, "must be unique"))
		}
		mountpoints.Insert(m.MountPath)
		if _, ok := devices[m.Name]; ok {
			allErrs = append(allErrs, field.Invalid(p.Child("name"), m.Name, "must not already exist in volumeDevices"))
		}
		for _, dp := range devices {
			if dp == m.MountPath {
				allErrs = append(allErrs, field.Invalid(p.Child("mountPath"), m.MountPath, "must not already exist as a path in volumeDevices"))
			}
		}
		if v, ok := vols[m.Name]; ok && v.Image != nil {
			if m.SubPath != "" {
				allErrs = append(allErrs, field.Invalid(p.Child("subPath"), m.SubPath, "not allowed in image volume sources"))
			}
			if m.SubPathExpr != "" {
				allErrs = append(allErrs, field.Invalid(p.Child("subPathExpr"), m.SubPathExpr, "not allowed in image volume sources"))
			}
		}
		// Upstream reports subPath problems against the list path, not the item.
		if m.SubPath != "" {
			allErrs = append(allErrs, validateLocalDescendingPath(m.SubPath, fldPath.Child("subPath"))...)
		}
		if m.SubPathExpr != "" {
			if m.SubPath != "" {
				allErrs = append(allErrs, field.Invalid(p.Child("subPathExpr"), m.SubPathExpr, "subPathExpr and subPath are mutually exclusive"))
			}
			allErrs = append(allErrs, validateLocalDescendingPath(m.SubPathExpr, fldPath.Child("subPathExpr"))...)
		}
		if m.MountPropagation != nil {
			mp := *m.MountPropagation
			valid := []corev1.MountPropagationMode{corev1.MountPropagationBidirectional, corev1.MountPropagationHostToContainer, corev1.MountPropagationNone}
			if mp != valid[0] && mp != valid[1] && mp != valid[2] {
				allErrs = append(allErrs, field.NotSupported(fldPath.Child("mountPropagation"), mp, valid))
			}
		}
	}
	return allErrs
}

func validateVolumeDevices(devices []corev1.VolumeDevice, mounts map[string]string, vols map[string]corev1.VolumeSource, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	paths, names := sets.New[string](), sets.New[string]()
	for i, d := range devices {
		p := fldPath.Index(i)
		src, matched := vols[d.Name]
		if d.Name == "" {
			allErrs = append(allErrs, field.Required(p.Child("name"), ""))
		}
		if names.Has(d.Name) {
			allErrs = append(allErrs, field.Invalid(p.Child("name"), d.Name, "must be unique"))
		}
		if matched && src.PersistentVolumeClaim == nil && src.Ephemeral == nil {
			allErrs = append(allErrs, field.Invalid(p.Child("name"), d.Name, "can only use volume source type of PersistentVolumeClaim or Ephemeral for block mode"))
		}
		if !matched {
			allErrs = append(allErrs, field.NotFound(p.Child("name"), d.Name))
		}
		if d.DevicePath == "" {
			allErrs = append(allErrs, field.Required(p.Child("devicePath"), ""))
		}
		if paths.Has(d.DevicePath) {
			allErrs = append(allErrs, field.Invalid(p.Child("devicePath"), d.DevicePath, "must be unique"))
		}
		if d.DevicePath != "" && len(validatePathNoBacksteps(d.DevicePath, p)) > 0 {
			allErrs = append(allErrs, field.Invalid(p.Child("devicePath"), d.DevicePath, "can not contain backsteps ('..')"))
		} else {
			paths.Insert(d.DevicePath)
		}
		if _, ok := mounts[d.Name]; ok {
			allErrs = append(allErrs, field.Invalid(p.Child("name"), d.Name, "must not already exist in volumeMounts"))
		}
		for _, mp := range mounts {
			if mp == d.DevicePath {
				allErrs = append(allErrs, field.Invalid(p.Child("devicePath"), d.DevicePath, "must not already exist as a path in volumeMounts"))
			}
		}
		if d.Name != "" {
			names.Insert(d.Name)
		}
	}
	return allErrs
}
