package resources

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/wasmkube/wasmkube/control/registry"
)

// StorageClassLister lists the cluster's StorageClasses, for the default
// class admission of PersistentVolumeClaims.
type StorageClassLister func(ctx context.Context) ([]*storagev1.StorageClass, error)

// IsDefaultClassAnnotation marks the cluster's default StorageClass.
const IsDefaultClassAnnotation = "storageclass.kubernetes.io/is-default-class"

// DefaultClass is the class a claim without storageClassName gets:
// among the classes annotated as default, the newest (then the first by
// name), as upstream's DefaultStorageClass admission chooses since 1.26.
// It returns nil when there is no default class.
func DefaultClass(classes []*storagev1.StorageClass) *storagev1.StorageClass {
	var best *storagev1.StorageClass
	for _, c := range classes {
		if c.Annotations[IsDefaultClassAnnotation] != "true" {
			continue
		}
		if best == nil || c.CreationTimestamp.After(best.CreationTimestamp.Time) ||
			(c.CreationTimestamp.Equal(&best.CreationTimestamp) && c.Name < best.Name) {
			best = c
		}
	}
	return best
}

// defaultStorageClass gives a new claim that names no class the default
// one. It runs where upstream's admission does: on create only, with the
// cluster's classes at hand; a claim asking for "" explicitly keeps it.
func defaultStorageClass(list StorageClassLister) option {
	return func(s *registry.Strategy) {
		if list == nil {
			return
		}
		s.Allocate = func(ctx context.Context, obj, old runtime.Object) (func(), error) {
			pvc, ok := obj.(*corev1.PersistentVolumeClaim)
			if !ok || old != nil || pvc.Spec.StorageClassName != nil {
				return func() {}, nil
			}
			classes, err := list(ctx)
			if err != nil {
				return nil, apierrors.NewInternalError(fmt.Errorf("listing storage classes for the default class: %w", err))
			}
			if c := DefaultClass(classes); c != nil {
				name := c.Name
				pvc.Spec.StorageClassName = &name
			}
			return func() {}, nil
		}
	}
}

// pendingOnCreate gives a new volume or claim, whose client-sent status
// resetStatus clears, the phase upstream shows from the first read:
// Pending (upstream defaults the phase again whenever it decodes the
// object). It must come before resetStatus, which runs it after clearing.
func pendingOnCreate(s *registry.Strategy) {
	s.PrepareForCreate = func(obj runtime.Object) {
		switch o := obj.(type) {
		case *corev1.PersistentVolume:
			o.Status.Phase = corev1.VolumePending
		case *corev1.PersistentVolumeClaim:
			o.Status.Phase = corev1.ClaimPending
		}
	}
}
