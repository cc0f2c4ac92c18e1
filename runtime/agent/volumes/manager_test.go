package volumes

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

func TestUnsupportedVolumes(t *testing.T) {
	m, _ := newTestManager(t, newFakeSources())
	pod := newPod("u1",
		vol("data", corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "c"}}),
		vol("share", corev1.VolumeSource{NFS: &corev1.NFSVolumeSource{Server: "nas", Path: "/x"}}),
		vol("blank", corev1.VolumeSource{}),
		emptyDirVolume("scratch", "", ""),
	)
	mounts, err := m.Setup(context.Background(), pod)
	wantErrContains(t, err,
		`pod shop/web-u1: volume "data": persistentVolumeClaim volumes are not supported by this node`,
		`volume "share": nfs volumes are not supported by this node`,
		`volume "blank": the volume has no source`)
	if _, ok := mounts["scratch"]; !ok || len(mounts) != 1 {
		t.Errorf("mounts = %v, want only the supported volume", mounts)
	}
}

func TestInvalidNames(t *testing.T) {
	m, podsDir := newTestManager(t, newFakeSources())
	if _, err := m.Setup(context.Background(), newPod("..", emptyDirVolume("x", "", ""))); err == nil {
		t.Error(`Setup accepted the pod UID ".."`)
	}
	_, err := m.Setup(context.Background(), newPod("u1", emptyDirVolume("../../escape", "", "")))
	wantErrContains(t, err, `invalid volume name "../../escape"`)
	if _, err := os.Stat(filepath.Join(podsDir, "escape")); !os.IsNotExist(err) {
		t.Errorf("a volume name escaped the pod directory: %v", err)
	}
	if err := m.TearDown("a/b"); err == nil {
		t.Error(`TearDown accepted the pod UID "a/b"`)
	}
	if _, err := m.Setup(context.Background(), nil); err == nil {
		t.Error("Setup accepted a nil pod")
	}
}

func TestPodUIDs(t *testing.T) {
	m, podsDir := newTestManager(t, newFakeSources())
	if uids, err := New(filepath.Join(podsDir, "none"), nil).PodUIDs(); err != nil || len(uids) != 0 {
		t.Errorf("PodUIDs of a missing directory = %v, %v", uids, err)
	}
	setup(t, m, newPod("u1", emptyDirVolume("a", "", "")))
	setup(t, m, newPod("u2", emptyDirVolume("a", corev1.StorageMediumMemory, "1Mi")))
	// A pod directory without volumes (the sandbox's files only).
	if err := os.MkdirAll(filepath.Join(podsDir, "u3", "containers"), 0o755); err != nil {
		t.Fatal(err)
	}
	uids, err := m.PodUIDs()
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(uids)
	if !slices.Equal(uids, []types.UID{"u1", "u2"}) {
		t.Errorf("PodUIDs = %v, want [u1 u2]", uids)
	}
	if err := m.TearDown("u2"); err != nil {
		t.Fatal(err)
	}
	if uids, _ := m.PodUIDs(); !slices.Equal(uids, []types.UID{"u1"}) {
		t.Errorf("PodUIDs after TearDown = %v, want [u1]", uids)
	}
	if _, err := os.Stat(filepath.Join(podsDir, "u3", "containers")); err != nil {
		t.Errorf("the pod directory's other files are gone: %v", err)
	}
}

// A container may leave a mount inside a volume (mount propagation).
// TearDown must take it off before removing anything, or it would delete
// what the mount shows.
func TestTearDownDoesNotReachThroughMounts(t *testing.T) {
	m, podsDir := newTestManager(t, newFakeSources())
	host := hostDirWith(t, "precious", "p")
	dir := setup(t, m, newPod("u1", emptyDirVolume("cache", corev1.StorageMediumMemory, "1Mi")))["cache"].HostPath
	inner := filepath.Join(dir, "inner")
	if err := os.Mkdir(inner, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount(host, inner, "", unix.MS_BIND, ""); err != nil {
		t.Fatalf("bind mount: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(inner, unix.MNT_DETACH) })

	if err := m.TearDown("u1"); err != nil {
		t.Fatal(err)
	}
	if got := readVolumeFile(t, host, "precious"); got != "p" {
		t.Errorf("host file = %q after TearDown", got)
	}
	if pts := mountPointsBelow(t, podsDir); len(pts) != 0 {
		t.Errorf("mounts left after TearDown: %v", pts)
	}
}

func TestConcurrentSetup(t *testing.T) {
	src := newFakeSources()
	src.setSecret(testNS, "creds", map[string][]byte{"k": []byte("v")})
	m, podsDir := newTestManager(t, src)
	pod := newPod("u1", vol("sec", corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "creds"}}))
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			_, err := m.Setup(context.Background(), pod)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	dir := filepath.Join(podsDir, "u1", "volumes", "kubernetes.io~secret", "sec")
	assertTmpfs(t, dir)
	if got := readVolumeFile(t, dir, "k"); got != "v" {
		t.Errorf("k = %q", got)
	}
	if len(m.locks) != 0 {
		t.Errorf("%d pod locks left after the calls returned", len(m.locks))
	}
}
