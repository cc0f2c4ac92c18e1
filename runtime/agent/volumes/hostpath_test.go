package volumes

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
)

func hostPathVolume(name, path string, typ corev1.HostPathType) corev1.Volume {
	return vol(name, corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: path, Type: &typ}})
}

// umask returns the process's umask, leaving it as it was.
func umask() os.FileMode {
	old := unix.Umask(0)
	unix.Umask(old)
	return os.FileMode(old)
}

// hostFixtures makes one file of each type the checks tell apart.
func hostFixtures(t *testing.T) map[string]string {
	t.Helper()
	dir := t.TempDir()
	f := map[string]string{
		"dir":  filepath.Join(dir, "d"),
		"file": filepath.Join(dir, "f"),
		"sock": filepath.Join(dir, "s"),
		"char": filepath.Join(dir, "c"),
		"blk":  filepath.Join(dir, "b"),
	}
	if err := os.Mkdir(f["dir"], 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f["file"], []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("unix", f["sock"])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	if err := unix.Mknod(f["char"], unix.S_IFCHR|0o600, int(unix.Mkdev(1, 3))); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mknod(f["blk"], unix.S_IFBLK|0o600, int(unix.Mkdev(7, 200))); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestHostPathTypes(t *testing.T) {
	f := hostFixtures(t)
	missing := filepath.Join(t.TempDir(), "missing")
	for _, tc := range []struct {
		typ     corev1.HostPathType
		ok      []string
		notOK   []string
		failure string
	}{
		{corev1.HostPathUnset, []string{"dir", "file", "sock", "char", "blk", "missing"}, nil, ""},
		{corev1.HostPathDirectory, []string{"dir"}, []string{"file", "sock", "char", "blk", "missing"}, "is not a directory"},
		{corev1.HostPathDirectoryOrCreate, []string{"dir"}, []string{"file", "sock"}, "is not a directory"},
		{corev1.HostPathFile, []string{"file"}, []string{"dir", "sock", "char", "blk", "missing"}, "is not a file"},
		{corev1.HostPathFileOrCreate, []string{"file"}, []string{"dir", "char"}, "is not a file"},
		{corev1.HostPathSocket, []string{"sock"}, []string{"dir", "file", "char", "missing"}, "is not a socket file"},
		{corev1.HostPathCharDev, []string{"char"}, []string{"dir", "file", "blk", "missing"}, "is not a character device"},
		{corev1.HostPathBlockDev, []string{"blk"}, []string{"dir", "file", "char", "missing"}, "is not a block device"},
	} {
		path := func(name string) string {
			if name == "missing" {
				return missing
			}
			return f[name]
		}
		for _, name := range tc.ok {
			if err := checkHostPathType(path(name), tc.typ); err != nil {
				t.Errorf("type %q, %s: %v", tc.typ, name, err)
			}
		}
		for _, name := range tc.notOK {
			err := checkHostPathType(path(name), tc.typ)
			want := "hostPath type check failed: " + path(name) + " " + tc.failure
			if err == nil || err.Error() != want {
				t.Errorf("type %q, %s: error %v, want %q", tc.typ, name, err, want)
			}
		}
	}
	wantErrContains(t, checkHostPathType(f["dir"], "Whatever"), "Whatever is an invalid volume type")
}

func TestHostPathCreates(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "a", "b")
	if err := checkHostPathType(dir, corev1.HostPathDirectoryOrCreate); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o755&^umask() {
		t.Errorf("DirectoryOrCreate made %v (%v), want a 0755 directory", fi, err)
	}

	file := filepath.Join(base, "a", "f")
	if err := checkHostPathType(file, corev1.HostPathFileOrCreate); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(file); err != nil || !fi.Mode().IsRegular() || fi.Size() != 0 || fi.Mode().Perm() != 0o644&^umask() {
		t.Errorf("FileOrCreate made %v (%v), want an empty 0644 file", fi, err)
	}

	// FileOrCreate does not make the parent, as in kubelet.
	orphan := filepath.Join(base, "none", "f")
	if err := checkHostPathType(orphan, corev1.HostPathFileOrCreate); err == nil {
		t.Error("FileOrCreate made a file whose parent is missing")
	}
	if _, err := os.Stat(filepath.Dir(orphan)); !os.IsNotExist(err) {
		t.Errorf("FileOrCreate made the parent directory: %v", err)
	}
}

func TestHostPathVolume(t *testing.T) {
	m, _ := newTestManager(t, newFakeSources())
	host := hostDirWith(t, "keep", "k")
	mounts := setup(t, m, newPod("u1", hostPathVolume("host", host, corev1.HostPathDirectory)))
	if got := mounts["host"]; got != (Mount{HostPath: host}) {
		t.Errorf("mount = %+v, want the host path itself, read-write", got)
	}
	if err := m.TearDown("u1"); err != nil {
		t.Fatal(err)
	}
	if got := readVolumeFile(t, host, "keep"); got != "k" {
		t.Errorf("the host path lost its content: %q", got)
	}

	_, err := m.Setup(context.Background(), newPod("u2", hostPathVolume("host", filepath.Join(host, "keep"), corev1.HostPathDirectory)))
	wantErrContains(t, err, `pod shop/web-u2: volume "host": hostPath type check failed: `+filepath.Join(host, "keep")+" is not a directory")
}
