package volumes

import (
	"context"
	"errors"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

// fakeClaims serves claims by "namespace/name" and volumes by name.
type fakeClaims struct {
	claims  map[string]*corev1.PersistentVolumeClaim
	volumes map[string]*corev1.PersistentVolume
}

func (f *fakeClaims) PersistentVolumeClaim(_ context.Context, ns, name string) (*corev1.PersistentVolumeClaim, error) {
	if c, ok := f.claims[ns+"/"+name]; ok {
		return c, nil
	}
	return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "persistentvolumeclaims"}, name)
}

func (f *fakeClaims) PersistentVolume(_ context.Context, name string) (*corev1.PersistentVolume, error) {
	if v, ok := f.volumes[name]; ok {
		return v, nil
	}
	return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "persistentvolumes"}, name)
}

func claimVolume(name, claim string, readOnly bool) corev1.Volume {
	return vol(name, corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim, ReadOnly: readOnly}})
}

func TestClaimVolumes(t *testing.T) {
	host := hostDirWith(t, "f", "data")
	bound := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "db", UID: types.UID("c1")},
		Spec:       corev1.PersistentVolumeClaimSpec{VolumeName: "pv1"},
		Status:     corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimBound},
	}
	pending := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "wait", UID: types.UID("c2")},
		Status:     corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimPending},
	}
	fc := &fakeClaims{
		claims: map[string]*corev1.PersistentVolumeClaim{"shop/db": bound, "shop/wait": pending},
		volumes: map[string]*corev1.PersistentVolume{"pv1": {
			ObjectMeta: metav1.ObjectMeta{Name: "pv1"},
			Spec: corev1.PersistentVolumeSpec{
				ClaimRef:               &corev1.ObjectReference{Namespace: "shop", Name: "db", UID: "c1"},
				PersistentVolumeSource: corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: host}},
			},
		}},
	}
	m, _ := newTestManager(t, newFakeSources(), WithClaims(fc))
	mounts := setup(t, m, newPod("u1", claimVolume("rw", "db", false), claimVolume("ro", "db", true)))
	if got := mounts["rw"]; got != (Mount{HostPath: host}) {
		t.Errorf("rw mount = %+v, want the volume's path", got)
	}
	if got := mounts["ro"]; got != (Mount{HostPath: host, ReadOnly: true}) {
		t.Errorf("ro mount = %+v, want the volume's path read-only", got)
	}
	if err := m.TearDown("u1"); err != nil {
		t.Fatal(err)
	}
	if got := readVolumeFile(t, host, "f"); got != "data" {
		t.Errorf("tear-down touched the volume's data: %q", got)
	}

	_, err := m.Setup(context.Background(), newPod("u2", claimVolume("w", "wait", false)))
	if !errors.Is(err, ErrClaimNotBound) {
		t.Errorf("pending claim: %v, want ErrClaimNotBound", err)
	}
	wantErrContains(t, err, `volume "w"`, "error processing PVC shop/wait: PVC is not bound")

	_, err = m.Setup(context.Background(), newPod("u3", claimVolume("x", "nope", false)))
	if !errors.Is(err, ErrClaimNotBound) {
		t.Errorf("missing claim: %v, want ErrClaimNotBound", err)
	}
	wantErrContains(t, err, `persistentvolumeclaim "nope" not found`)

	// A claim being deleted: not for a pod that has not started, still
	// for one that runs.
	now := metav1.Now()
	bound.DeletionTimestamp = &now
	_, err = m.Setup(context.Background(), newPod("u6", claimVolume("rw", "db", false)))
	wantErrContains(t, err, "can't start pod because PVC shop/db is being deleted")
	running := newPod("u7", claimVolume("rw", "db", false))
	running.Status.StartTime = &now
	if got := setup(t, m, running)["rw"]; got.HostPath != host {
		t.Errorf("a running pod lost its claim being deleted: %+v", got)
	}
	bound.DeletionTimestamp = nil

	// A volume now bound to another claim of the same name is not used.
	fc.volumes["pv1"].Spec.ClaimRef.UID = "other"
	_, err = m.Setup(context.Background(), newPod("u4", claimVolume("rw", "db", false)))
	wantErrContains(t, err, "the PV pv1 is not bound to it")

	plain, _ := newTestManager(t, newFakeSources())
	_, err = plain.Setup(context.Background(), newPod("u5", claimVolume("rw", "db", false)))
	wantErrContains(t, err, "persistentVolumeClaim volumes are not supported by this node")
}
