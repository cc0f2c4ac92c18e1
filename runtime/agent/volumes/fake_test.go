package volumes

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

// fakeSources serves ConfigMaps and Secrets from maps keyed by
// "namespace/name", answering NotFound as the API server does.
type fakeSources struct {
	mu         sync.Mutex
	configMaps map[string]*corev1.ConfigMap
	secrets    map[string]*corev1.Secret
	err        error // when set, every call fails with it
}

func newFakeSources() *fakeSources {
	return &fakeSources{configMaps: map[string]*corev1.ConfigMap{}, secrets: map[string]*corev1.Secret{}}
}

func (f *fakeSources) setConfigMap(ns, name string, data map[string]string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.configMaps[ns+"/"+name] = &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Data: data}
}

func (f *fakeSources) setSecret(ns, name string, data map[string][]byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.secrets[ns+"/"+name] = &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Data: data}
}

func (f *fakeSources) ConfigMap(_ context.Context, ns, name string) (*corev1.ConfigMap, error) {
	return lookup(f, f.configMaps, "configmaps", ns, name)
}

func (f *fakeSources) Secret(_ context.Context, ns, name string) (*corev1.Secret, error) {
	return lookup(f, f.secrets, "secrets", ns, name)
}

func lookup[T any](f *fakeSources, m map[string]*T, resource, ns, name string) (*T, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	obj, ok := m[ns+"/"+name]
	if !ok {
		return nil, apierrors.NewNotFound(schema.GroupResource{Resource: resource}, name)
	}
	return obj, nil
}

const testNS = "shop"

// newTestManager makes a Manager over a fresh pods directory. Every pod it
// sets up is torn down when the test ends, before the directory is
// removed, so that no tmpfs outlives the test.
func newTestManager(t *testing.T, src Sources, opts ...Option) (*Manager, string) {
	t.Helper()
	dir := t.TempDir()
	m := New(dir, src, opts...)
	t.Cleanup(func() {
		uids, err := m.PodUIDs()
		if err != nil {
			t.Errorf("PodUIDs: %v", err)
		}
		for _, uid := range uids {
			if err := m.TearDown(uid); err != nil {
				t.Errorf("TearDown %s: %v", uid, err)
			}
		}
	})
	return m, dir
}

func newPod(uid string, vols ...corev1.Volume) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: "web-" + uid, UID: types.UID(uid)},
		Spec:       corev1.PodSpec{Volumes: vols, Containers: []corev1.Container{{Name: "app"}}},
	}
}

func vol(name string, src corev1.VolumeSource) corev1.Volume {
	return corev1.Volume{Name: name, VolumeSource: src}
}

func ptr[T any](v T) *T { return &v }

// setup runs Setup and fails the test on an error.
func setup(t *testing.T, m *Manager, pod *corev1.Pod) map[string]Mount {
	t.Helper()
	mounts, err := m.Setup(context.Background(), pod)
	if err != nil {
		t.Fatalf("Setup: %v", err)
	}
	return mounts
}

// readVolumeFile reads a file of a volume through its user-visible path.
func readVolumeFile(t *testing.T, dir, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
	return string(b)
}

// dataTarget is where the ..data link of a volume points.
func dataTarget(t *testing.T, dir string) string {
	t.Helper()
	target, err := os.Readlink(filepath.Join(dir, dataDirName))
	if err != nil {
		t.Fatalf("readlink ..data: %v", err)
	}
	return target
}

// realMode is the permission bits of the real file behind a volume path.
func realMode(t *testing.T, dir, name string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(filepath.Join(dir, name))
	if err != nil {
		t.Fatalf("stat %s: %v", name, err)
	}
	return fi.Mode().Perm()
}

// mountPointsBelow lists the mount points at or below dir, read from
// /proc/self/mountinfo independently of the code under test.
func mountPointsBelow(t *testing.T, dir string) []string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	resolved := dir
	if r, err := filepath.EvalSymlinks(dir); err == nil {
		resolved = r
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && (f[4] == resolved || strings.HasPrefix(f[4], resolved+"/")) {
			out = append(out, f[4])
		}
	}
	return out
}

// assertTmpfs checks that dir is the root of a tmpfs mount.
func assertTmpfs(t *testing.T, dir string) {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatalf("statfs %s: %v", dir, err)
	}
	if st.Type != unix.TMPFS_MAGIC {
		t.Errorf("%s: file system type %#x, want tmpfs (%#x)", dir, st.Type, unix.TMPFS_MAGIC)
	}
	resolved, err := filepath.EvalSymlinks(dir)
	if err != nil {
		t.Fatal(err)
	}
	if pts := mountPointsBelow(t, dir); len(pts) != 1 || pts[0] != resolved {
		t.Errorf("mount points at %s = %v, want exactly the volume directory", dir, pts)
	}
}

// wantErrContains fails unless err is non-nil and says each of parts.
func wantErrContains(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want one saying %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not say %q", err, p)
		}
	}
}

// hostDirWith makes a directory on the host holding one file.
func hostDirWith(t *testing.T, name, content string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}
