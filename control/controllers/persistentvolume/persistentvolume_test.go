package persistentvolume

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	storagehelpers "k8s.io/component-helpers/storage/volume"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/wasmkube/wasmkube/control/controllers/framework"
	"github.com/wasmkube/wasmkube/internal/testcluster"
)

const waitFor = 20 * time.Second

func start(t *testing.T) kubernetes.Interface {
	t.Helper()
	_, cs := testcluster.Start(t)
	testcluster.RunControllers(t, cs, map[string]framework.Starter{"persistentvolume": Starter()})
	return cs
}

func hostPathPV(name, size string, reclaim corev1.PersistentVolumeReclaimPolicy, mods ...func(*corev1.PersistentVolume)) *corev1.PersistentVolume {
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)},
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			PersistentVolumeReclaimPolicy: reclaim,
			PersistentVolumeSource:        corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/tmp/" + name}},
		},
	}
	for _, m := range mods {
		m(pv)
	}
	return pv
}

func claim(name, size string, mods ...func(*corev1.PersistentVolumeClaim)) *corev1.PersistentVolumeClaim {
	c := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: corev1.PersistentVolumeClaimSpec{
			StorageClassName: ptr.To(""),
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)}},
		},
	}
	for _, m := range mods {
		m(c)
	}
	return c
}

func create[T any](t *testing.T, f func(context.Context, T, metav1.CreateOptions) (T, error), obj T) T {
	t.Helper()
	out, err := f(context.Background(), obj, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func waitClaim(t *testing.T, cs kubernetes.Interface, name, what string, cond func(*corev1.PersistentVolumeClaim) error) *corev1.PersistentVolumeClaim {
	t.Helper()
	var got *corev1.PersistentVolumeClaim
	testcluster.Eventually(t, waitFor, "claim "+name+" "+what, func(ctx context.Context) (bool, error) {
		c, err := cs.CoreV1().PersistentVolumeClaims("default").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		got = c
		return true, cond(c)
	})
	return got
}

func waitVolume(t *testing.T, cs kubernetes.Interface, name, what string, cond func(*corev1.PersistentVolume) error) *corev1.PersistentVolume {
	t.Helper()
	var got *corev1.PersistentVolume
	testcluster.Eventually(t, waitFor, "volume "+name+" "+what, func(ctx context.Context) (bool, error) {
		v, err := cs.CoreV1().PersistentVolumes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		got = v
		return true, cond(v)
	})
	return got
}

func boundTo(volume string) func(*corev1.PersistentVolumeClaim) error {
	return func(c *corev1.PersistentVolumeClaim) error {
		if c.Status.Phase != corev1.ClaimBound || c.Spec.VolumeName != volume {
			return fmt.Errorf("phase %s volume %q", c.Status.Phase, c.Spec.VolumeName)
		}
		return nil
	}
}

func volumePhase(p corev1.PersistentVolumePhase) func(*corev1.PersistentVolume) error {
	return func(v *corev1.PersistentVolume) error {
		if v.Status.Phase != p {
			return fmt.Errorf("phase %s", v.Status.Phase)
		}
		return nil
	}
}

// A claim binds to the smallest volume that fits; both sides get the
// bind annotations, statuses and protection finalizers; deleting the
// claim releases a Retain volume.
func TestBindSmallestFitAndRetain(t *testing.T) {
	cs := start(t)
	pvs := cs.CoreV1().PersistentVolumes()
	create(t, pvs.Create, hostPathPV("small", "1Gi", corev1.PersistentVolumeReclaimRetain))
	create(t, pvs.Create, hostPathPV("big", "10Gi", corev1.PersistentVolumeReclaimRetain))
	create(t, pvs.Create, hostPathPV("rox", "2Gi", corev1.PersistentVolumeReclaimRetain, func(pv *corev1.PersistentVolume) {
		pv.Spec.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadOnlyMany}
	}))
	waitVolume(t, cs, "big", "Available", volumePhase(corev1.VolumeAvailable))

	c := create(t, cs.CoreV1().PersistentVolumeClaims("default").Create, claim("data", "2Gi"))
	got := waitClaim(t, cs, "data", "Bound to big", boundTo("big"))
	if got.Annotations[storagehelpers.AnnBindCompleted] != "yes" || got.Annotations[storagehelpers.AnnBoundByController] != "yes" {
		t.Errorf("claim annotations %v", got.Annotations)
	}
	if q := got.Status.Capacity[corev1.ResourceStorage]; q.String() != "10Gi" || !slices.Equal(got.Status.AccessModes, []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}) {
		t.Errorf("claim status %+v", got.Status)
	}
	pv := waitVolume(t, cs, "big", "Bound", volumePhase(corev1.VolumeBound))
	if ref := pv.Spec.ClaimRef; ref == nil || ref.UID != c.UID || pv.Annotations[storagehelpers.AnnBoundByController] != "yes" {
		t.Errorf("volume claimRef %+v annotations %v", ref, pv.Annotations)
	}
	if !slices.Contains(pv.Finalizers, PVProtectionFinalizer) {
		t.Errorf("volume finalizers %v", pv.Finalizers)
	}
	waitClaim(t, cs, "data", "protected", func(c *corev1.PersistentVolumeClaim) error {
		if !slices.Contains(c.Finalizers, PVCProtectionFinalizer) {
			return fmt.Errorf("finalizers %v", c.Finalizers)
		}
		return nil
	})
	waitVolume(t, cs, "small", "still Available", volumePhase(corev1.VolumeAvailable))

	if err := cs.CoreV1().PersistentVolumeClaims("default").Delete(context.Background(), "data", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitVolume(t, cs, "big", "Released", volumePhase(corev1.VolumeReleased))
}

// A claim naming its volume binds to it, without the bound-by-controller
// annotation on the claim; a volume whose claim is gone and whose policy
// is Delete without a provisioner fails, as upstream reports it.
func TestPreBoundAndUnreclaimableDelete(t *testing.T) {
	cs := start(t)
	create(t, cs.CoreV1().PersistentVolumes().Create, hostPathPV("named", "1Gi", corev1.PersistentVolumeReclaimDelete))
	create(t, cs.CoreV1().PersistentVolumeClaims("default").Create, claim("mine", "1Gi", func(c *corev1.PersistentVolumeClaim) {
		c.Spec.VolumeName = "named"
	}))
	got := waitClaim(t, cs, "mine", "Bound to named", boundTo("named"))
	if _, ok := got.Annotations[storagehelpers.AnnBoundByController]; ok {
		t.Errorf("a claim that named its volume got %s", storagehelpers.AnnBoundByController)
	}
	if err := cs.CoreV1().PersistentVolumeClaims("default").Delete(context.Background(), "mine", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	pv := waitVolume(t, cs, "named", "Failed", volumePhase(corev1.VolumeFailed))
	if want := `error getting deleter volume plugin for volume "named": no deletable volume plugin matched`; pv.Status.Message != want {
		t.Errorf("message %q, want %q", pv.Status.Message, want)
	}
}

// A claim in a WaitForFirstConsumer class waits for its first consumer;
// once a node is selected it is handed to the class's provisioner, and a
// volume the provisioner makes for it is bound.
func TestDelayedBindingAndProvisioning(t *testing.T) {
	cs := start(t)
	create(t, cs.StorageV1().StorageClasses().Create, &storagev1.StorageClass{
		ObjectMeta:        metav1.ObjectMeta{Name: "local"},
		Provisioner:       "example.com/local",
		VolumeBindingMode: ptr.To(storagev1.VolumeBindingWaitForFirstConsumer),
	})
	c := create(t, cs.CoreV1().PersistentVolumeClaims("default").Create, claim("later", "1Gi", func(c *corev1.PersistentVolumeClaim) {
		c.Spec.StorageClassName = ptr.To("local")
	}))
	ctx := context.Background()
	testcluster.WaitEvent(ctx, t, cs, "later", "WaitForFirstConsumer", "waiting for first consumer to be created before binding")
	waitClaim(t, cs, "later", "Pending", func(c *corev1.PersistentVolumeClaim) error {
		if c.Status.Phase != corev1.ClaimPending || c.Annotations[storagehelpers.AnnStorageProvisioner] != "" {
			return fmt.Errorf("phase %s annotations %v", c.Status.Phase, c.Annotations)
		}
		return nil
	})

	c, err := cs.CoreV1().PersistentVolumeClaims("default").Get(ctx, "later", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	metav1.SetMetaDataAnnotation(&c.ObjectMeta, storagehelpers.AnnSelectedNode, "n1")
	if _, err := cs.CoreV1().PersistentVolumeClaims("default").Update(ctx, c, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitClaim(t, cs, "later", "handed to the provisioner", func(c *corev1.PersistentVolumeClaim) error {
		if c.Annotations[storagehelpers.AnnStorageProvisioner] != "example.com/local" || c.Annotations[storagehelpers.AnnBetaStorageProvisioner] != "example.com/local" {
			return fmt.Errorf("annotations %v", c.Annotations)
		}
		return nil
	})
	testcluster.WaitEvent(ctx, t, cs, "later", "ExternalProvisioning",
		"Waiting for a volume to be created either by the external provisioner 'example.com/local' or manually by the system administrator.")

	// What a provisioner does: a volume pre-bound to the claim.
	create(t, cs.CoreV1().PersistentVolumes().Create, hostPathPV("pvc-made", "1Gi", corev1.PersistentVolumeReclaimDelete, func(pv *corev1.PersistentVolume) {
		pv.Spec.StorageClassName = "local"
		pv.Annotations = map[string]string{storagehelpers.AnnDynamicallyProvisioned: "example.com/local"}
		pv.Spec.ClaimRef = &corev1.ObjectReference{Kind: "PersistentVolumeClaim", Namespace: "default", Name: "later", UID: c.UID}
	}))
	waitClaim(t, cs, "later", "Bound to pvc-made", boundTo("pvc-made"))

	// Released, Delete, provisioned: left to the provisioner, not Failed.
	if err := cs.CoreV1().PersistentVolumeClaims("default").Delete(ctx, "later", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitVolume(t, cs, "pvc-made", "Released", volumePhase(corev1.VolumeReleased))
	if err := cs.CoreV1().PersistentVolumes().Delete(ctx, "pvc-made", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	testcluster.Eventually(t, waitFor, "released volume deleted past its finalizer", func(ctx context.Context) (bool, error) {
		_, err := cs.CoreV1().PersistentVolumes().Get(ctx, "pvc-made", metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
}

// A claim used by a scheduled pod stays while the pod does
// (pvc-protection), and goes once the pod is gone.
func TestClaimInUseIsProtected(t *testing.T) {
	cs := start(t)
	ctx := context.Background()
	create(t, cs.CoreV1().PersistentVolumeClaims("default").Create, claim("used", "1Gi"))
	waitClaim(t, cs, "used", "protected", func(c *corev1.PersistentVolumeClaim) error {
		if !slices.Contains(c.Finalizers, PVCProtectionFinalizer) {
			return fmt.Errorf("finalizers %v", c.Finalizers)
		}
		return nil
	})
	create(t, cs.CoreV1().Pods("default").Create, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "user", Namespace: "default"},
		Spec: corev1.PodSpec{
			NodeName:   "n1",
			Containers: []corev1.Container{{Name: "c", Image: "x"}},
			Volumes: []corev1.Volume{{Name: "d", VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "used"},
			}}},
		},
	})
	if err := cs.CoreV1().PersistentVolumeClaims("default").Delete(ctx, "used", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitClaim(t, cs, "used", "terminating", func(c *corev1.PersistentVolumeClaim) error {
		if c.DeletionTimestamp == nil {
			return fmt.Errorf("not terminating")
		}
		return nil
	})
	time.Sleep(500 * time.Millisecond) // a wrong removal would have happened by now
	if _, err := cs.CoreV1().PersistentVolumeClaims("default").Get(ctx, "used", metav1.GetOptions{}); err != nil {
		t.Fatalf("claim in use went: %v", err)
	}
	if err := cs.CoreV1().Pods("default").Delete(ctx, "user", metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil {
		t.Fatal(err)
	}
	testcluster.Eventually(t, waitFor, "claim gone with its pod", func(ctx context.Context) (bool, error) {
		_, err := cs.CoreV1().PersistentVolumeClaims("default").Get(ctx, "used", metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
}
