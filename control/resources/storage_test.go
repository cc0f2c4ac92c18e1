package resources

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/wasmkube/wasmkube/control/registry"
	"github.com/wasmkube/wasmkube/control/validation"
)

func class(name string, isDefault bool, created time.Time) *storagev1.StorageClass {
	sc := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: metav1.NewTime(created)}}
	if isDefault {
		sc.Annotations = map[string]string{IsDefaultClassAnnotation: "true"}
	}
	return sc
}

func TestDefaultClassIsNewestDefault(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	classes := []*storagev1.StorageClass{
		class("old-default", true, t0), class("newest-plain", false, t0.Add(2*time.Hour)),
		class("new-default", true, t0.Add(time.Hour)), class("a-tie", true, t0.Add(time.Hour)),
	}
	if got := DefaultClass(classes); got == nil || got.Name != "a-tie" {
		t.Errorf("default class %v, want a-tie (newest default, then first by name)", got)
	}
	if got := DefaultClass(classes[1:2]); got != nil {
		t.Errorf("default class %v among classes none of which is default", got.Name)
	}
}

func TestClaimGetsDefaultClassOnCreateOnly(t *testing.T) {
	s := &registry.Strategy{}
	defaultStorageClass(func(context.Context) ([]*storagev1.StorageClass, error) {
		return []*storagev1.StorageClass{class("local-path", true, time.Now())}, nil
	})(s)
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		class *string
		old   *corev1.PersistentVolumeClaim
		want  *string
	}{
		{"unset", nil, nil, ptr.To("local-path")},
		{"explicitly none", ptr.To(""), nil, ptr.To("")},
		{"named", ptr.To("fast"), nil, ptr.To("fast")},
		{"update", nil, &corev1.PersistentVolumeClaim{}, nil},
	} {
		pvc := &corev1.PersistentVolumeClaim{Spec: corev1.PersistentVolumeClaimSpec{StorageClassName: tc.class}}
		var err error
		if tc.old != nil {
			_, err = s.Allocate(ctx, pvc, tc.old)
		} else {
			_, err = s.Allocate(ctx, pvc, nil) // an untyped nil: a create
		}
		if err != nil {
			t.Fatal(err)
		}
		if got := pvc.Spec.StorageClassName; (got == nil) != (tc.want == nil) || (got != nil && *got != *tc.want) {
			t.Errorf("%s: storageClassName %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestStorageClassProvisionerIsQualifiedName(t *testing.T) {
	for p, ok := range map[string]bool{
		"wasmkube.io/local-path": true, "kubernetes.io/no-provisioner": true, "ebs.csi.aws.com": true,
		"bad/name/twice": false, "-dash": false,
	} {
		sc := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "c"}, Provisioner: p,
			VolumeBindingMode: ptr.To(storagev1.VolumeBindingImmediate)}
		if errs := validation.ValidateStorageClass(sc); (len(errs) == 0) != ok {
			t.Errorf("provisioner %q: errors %v, want valid=%v", p, errs, ok)
		}
	}
}

func TestNewClaimsAndVolumesArePending(t *testing.T) {
	s := &registry.Strategy{}
	pendingOnCreate(s)
	resetStatus(s)
	pvc := &corev1.PersistentVolumeClaim{Status: corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimBound, AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}}}
	s.PrepareForCreate(pvc)
	if pvc.Status.Phase != corev1.ClaimPending || pvc.Status.AccessModes != nil {
		t.Errorf("new claim status %+v, want only phase Pending", pvc.Status)
	}
	pv := &corev1.PersistentVolume{Status: corev1.PersistentVolumeStatus{Phase: corev1.VolumeBound}}
	s.PrepareForCreate(pv)
	if pv.Status.Phase != corev1.VolumePending {
		t.Errorf("new volume phase %s, want Pending", pv.Status.Phase)
	}
}
