package printers

import (
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

var (
	leaseColumns = []metav1.TableColumnDefinition{
		nameColumn,
		{Name: "Holder", Type: "string", Description: coordinationv1.LeaseSpec{}.SwaggerDoc()["holderIdentity"]},
		ageColumn,
	}
	runtimeClassColumns = []metav1.TableColumnDefinition{
		nameColumn,
		// Upstream looks "handler" up in the ObjectMeta docs, which have no
		// such key, so the description is empty there too.
		{Name: "Handler", Type: "string", Description: objectMetaDoc["handler"]},
		ageColumn,
	}
	storageClassColumns = []metav1.TableColumnDefinition{
		nameColumn,
		{Name: "Provisioner", Type: "string", Description: storagev1.StorageClass{}.SwaggerDoc()["provisioner"]},
		{Name: "ReclaimPolicy", Type: "string", Description: storagev1.StorageClass{}.SwaggerDoc()["reclaimPolicy"]},
		{Name: "VolumeBindingMode", Type: "string", Description: storagev1.StorageClass{}.SwaggerDoc()["volumeBindingMode"]},
		{Name: "AllowVolumeExpansion", Type: "string", Description: storagev1.StorageClass{}.SwaggerDoc()["allowVolumeExpansion"]},
		ageColumn,
	}
)

// Annotations marking the cluster's default StorageClass, current and beta.
const (
	defaultStorageClassAnnotation     = "storageclass.kubernetes.io/is-default-class"
	betaDefaultStorageClassAnnotation = "storageclass.beta.kubernetes.io/is-default-class"
)

// clusterTable covers the small cluster-infrastructure kinds from the
// coordination, node and storage groups.
func (p *Printers) clusterTable(obj runtime.Object) ([]metav1.TableColumnDefinition, []metav1.TableRow, bool, error) {
	switch o := obj.(type) {
	case *coordinationv1.Lease:
		return leaseColumns, one(p.leaseRow(o)), true, nil
	case *coordinationv1.LeaseList:
		return leaseColumns, eachRow(o.Items, p.leaseRow), true, nil
	case *nodev1.RuntimeClass:
		return runtimeClassColumns, one(p.runtimeClassRow(o)), true, nil
	case *nodev1.RuntimeClassList:
		return runtimeClassColumns, eachRow(o.Items, p.runtimeClassRow), true, nil
	case *storagev1.StorageClass:
		return storageClassColumns, one(p.storageClassRow(o)), true, nil
	case *storagev1.StorageClassList:
		return storageClassColumns, eachRow(o.Items, p.storageClassRow), true, nil
	}
	return nil, nil, false, nil
}

func (p *Printers) leaseRow(l *coordinationv1.Lease) metav1.TableRow {
	holder := ""
	if l.Spec.HolderIdentity != nil {
		holder = *l.Spec.HolderIdentity
	}
	return cells(l.Name, holder, p.since(l.CreationTimestamp))
}

func (p *Printers) runtimeClassRow(rc *nodev1.RuntimeClass) metav1.TableRow {
	return cells(rc.Name, rc.Handler, p.since(rc.CreationTimestamp))
}

func (p *Printers) storageClassRow(sc *storagev1.StorageClass) metav1.TableRow {
	name := sc.Name
	if sc.Annotations[defaultStorageClassAnnotation] == "true" || sc.Annotations[betaDefaultStorageClassAnnotation] == "true" {
		name += " (default)"
	}
	reclaim := string(corev1.PersistentVolumeReclaimDelete)
	if sc.ReclaimPolicy != nil {
		reclaim = string(*sc.ReclaimPolicy)
	}
	binding := string(storagev1.VolumeBindingImmediate)
	if sc.VolumeBindingMode != nil {
		binding = string(*sc.VolumeBindingMode)
	}
	expand := false
	if sc.AllowVolumeExpansion != nil {
		expand = *sc.AllowVolumeExpansion
	}
	return cells(name, sc.Provisioner, reclaim, binding, expand, p.since(sc.CreationTimestamp))
}
