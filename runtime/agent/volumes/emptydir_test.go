package volumes

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

func emptyDirVolume(name string, medium corev1.StorageMedium, sizeLimit string) corev1.Volume {
	src := &corev1.EmptyDirVolumeSource{Medium: medium}
	if sizeLimit != "" {
		src.SizeLimit = ptr(resource.MustParse(sizeLimit))
	}
	return vol(name, corev1.VolumeSource{EmptyDir: src})
}

func TestEmptyDirOnDisk(t *testing.T) {
	m, podsDir := newTestManager(t, newFakeSources())
	mounts := setup(t, m, newPod("u1", emptyDirVolume("scratch", "", "")))
	want := filepath.Join(podsDir, "u1", "volumes", "kubernetes.io~empty-dir", "scratch")
	if got := mounts["scratch"]; got != (Mount{HostPath: want}) {
		t.Fatalf("mount = %+v, want %s read-write", got, want)
	}
	fi, err := os.Stat(want)
	if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o777 {
		t.Fatalf("emptyDir = %v (%v), want a 0777 directory", fi, err)
	}
	if pts := mountPointsBelow(t, podsDir); len(pts) != 0 {
		t.Errorf("a disk emptyDir mounted something: %v", pts)
	}
	// What a container wrote survives the next sync.
	if err := os.WriteFile(filepath.Join(want, "work"), []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	setup(t, m, newPod("u1", emptyDirVolume("scratch", "", "")))
	if got := readVolumeFile(t, want, "work"); got != "data" {
		t.Errorf("work = %q after a second Setup", got)
	}
}

func TestEmptyDirMemory(t *testing.T) {
	m, podsDir := newTestManager(t, newFakeSources())
	pod := newPod("u1", emptyDirVolume("cache", corev1.StorageMediumMemory, "1Mi"))
	dir := setup(t, m, pod)["cache"].HostPath
	assertTmpfs(t, dir)
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	if size := st.Blocks * uint64(st.Bsize); size != 1<<20 {
		t.Errorf("tmpfs size = %d bytes, want 1Mi (%d)", size, 1<<20)
	}

	// Setup again: the same mount, with what was written in it.
	if err := os.WriteFile(filepath.Join(dir, "k"), []byte("v"), 0o600); err != nil {
		t.Fatal(err)
	}
	setup(t, m, pod)
	assertTmpfs(t, dir)
	if got := readVolumeFile(t, dir, "k"); got != "v" {
		t.Errorf("k = %q after a second Setup", got)
	}

	if err := m.TearDown("u1"); err != nil {
		t.Fatal(err)
	}
	if pts := mountPointsBelow(t, podsDir); len(pts) != 0 {
		t.Errorf("mounts left after TearDown: %v", pts)
	}
	if _, err := os.Stat(filepath.Join(podsDir, "u1", "volumes")); !os.IsNotExist(err) {
		t.Errorf("volumes directory left after TearDown: %v", err)
	}
	if err := m.TearDown("u1"); err != nil {
		t.Errorf("second TearDown: %v", err)
	}
}

func TestEmptyDirMemorySizeFromPodLimit(t *testing.T) {
	m, _ := newTestManager(t, newFakeSources(), WithNodeAllocatable(corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")}))
	pod := newPod("u1", emptyDirVolume("cache", corev1.StorageMediumMemory, "32Mi"))
	pod.Spec.Containers = []corev1.Container{
		{Name: "a", Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Mi")}}},
		{Name: "b", Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("2Mi")}}},
	}
	dir := setup(t, m, pod)["cache"].HostPath
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	if size := st.Blocks * uint64(st.Bsize); size != 3<<20 {
		t.Errorf("tmpfs size = %d bytes, want the pod's 3Mi memory limit", size)
	}
}

func TestMemorySize(t *testing.T) {
	mi := func(n int64) int64 { return n << 20 }
	limited := func(limits ...string) *corev1.Pod {
		pod := newPod("u1")
		pod.Spec.Containers = nil
		for _, l := range limits {
			c := corev1.Container{Name: "c"}
			if l != "" {
				c.Resources.Limits = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse(l)}
			}
			pod.Spec.Containers = append(pod.Spec.Containers, c)
		}
		return pod
	}
	withInit := limited("4Mi")
	withInit.Spec.InitContainers = []corev1.Container{
		{Name: "sidecar", RestartPolicy: ptr(corev1.ContainerRestartPolicyAlways),
			Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Mi")}}},
		{Name: "init", Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("8Mi")}}},
	}
	podLevel := limited("", "")
	podLevel.Spec.Resources = &corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("5Mi")}}

	for _, tc := range []struct {
		name        string
		allocatable string
		pod         *corev1.Pod
		sizeLimit   string
		want        int64
	}{
		{"nothing known", "", limited(""), "", 0},
		{"sizeLimit only", "", limited(""), "2Mi", mi(2)},
		{"node allocatable", "16Mi", limited(""), "", mi(16)},
		{"sizeLimit under allocatable", "16Mi", limited(""), "2Mi", mi(2)},
		{"sizeLimit over allocatable", "16Mi", limited(""), "20Mi", mi(16)},
		{"a container without limit", "16Mi", limited("1Mi", ""), "", mi(16)},
		{"pod limit", "16Mi", limited("1Mi", "2Mi"), "", mi(3)},
		{"pod limit under sizeLimit", "", limited("1Mi", "2Mi"), "10Mi", mi(3)},
		{"init container peak", "", withInit, "", mi(9)},
		{"pod-level limit", "16Mi", podLevel, "", mi(5)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var opts []Option
			if tc.allocatable != "" {
				opts = append(opts, WithNodeAllocatable(corev1.ResourceList{corev1.ResourceMemory: resource.MustParse(tc.allocatable)}))
			}
			m := New(t.TempDir(), newFakeSources(), opts...)
			var sl *resource.Quantity
			if tc.sizeLimit != "" {
				sl = ptr(resource.MustParse(tc.sizeLimit))
			}
			if got := m.memorySize(tc.pod, sl); got != tc.want {
				t.Errorf("memorySize = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestEmptyDirUnsupportedMedium(t *testing.T) {
	m, _ := newTestManager(t, newFakeSources())
	_, err := m.Setup(context.Background(), newPod("u1",
		emptyDirVolume("huge", corev1.StorageMediumHugePages, ""),
		emptyDirVolume("odd", "Tape", "")))
	wantErrContains(t, err, `volume "huge": emptyDir medium HugePages is not supported by this node`,
		`volume "odd": emptyDir medium "Tape" is not a known storage medium`)
}
