package volumes

import (
	"context"
	"errors"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

func configMapVolume(name, cm string, items []corev1.KeyToPath, defaultMode *int32, optional *bool) corev1.Volume {
	return vol(name, corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
		LocalObjectReference: corev1.LocalObjectReference{Name: cm},
		Items:                items, DefaultMode: defaultMode, Optional: optional,
	}})
}

func TestConfigMapVolumeAllKeys(t *testing.T) {
	src := newFakeSources()
	src.setConfigMap(testNS, "settings", map[string]string{"app.conf": "port=80\n", "level": "debug"})
	src.configMaps[testNS+"/settings"].BinaryData = map[string][]byte{"blob.bin": {0, 1, 2, 0xff}}
	m, podsDir := newTestManager(t, src)

	mounts := setup(t, m, newPod("u1", configMapVolume("cfg", "settings", nil, nil, nil)))
	want := filepath.Join(podsDir, "u1", "volumes", "kubernetes.io~configmap", "cfg")
	if got := mounts["cfg"]; got != (Mount{HostPath: want, ReadOnly: true}) {
		t.Fatalf("mount = %+v, want %s read-only", got, want)
	}
	for name, content := range map[string]string{"app.conf": "port=80\n", "level": "debug", "blob.bin": "\x00\x01\x02\xff"} {
		if got := readVolumeFile(t, want, name); got != content {
			t.Errorf("%s = %q, want %q", name, got, content)
		}
		if got := realMode(t, want, name); got != 0o644 {
			t.Errorf("mode of %s = %o, want the default 644", name, got)
		}
	}
	fi, err := os.Stat(want)
	if err != nil || fi.Mode().Perm() != 0o777 {
		t.Errorf("volume directory mode = %v (%v), want 0777 as kubelet's", fi.Mode(), err)
	}
}

func TestConfigMapVolumeItemsAndModes(t *testing.T) {
	src := newFakeSources()
	src.setConfigMap(testNS, "settings", map[string]string{"a": "A", "b": "B", "c": "C"})
	m, _ := newTestManager(t, src)

	items := []corev1.KeyToPath{{Key: "a", Path: "conf/a.txt", Mode: ptr[int32](0o600)}, {Key: "b", Path: "b.txt"}}
	mounts := setup(t, m, newPod("u1", configMapVolume("cfg", "settings", items, ptr[int32](0o440), nil)))
	dir := mounts["cfg"].HostPath
	if got := readVolumeFile(t, dir, "conf/a.txt"); got != "A" {
		t.Errorf("conf/a.txt = %q", got)
	}
	if got := realMode(t, dir, "conf/a.txt"); got != 0o600 {
		t.Errorf("mode of conf/a.txt = %o, want the item's 600", got)
	}
	if got := realMode(t, dir, "b.txt"); got != 0o440 {
		t.Errorf("mode of b.txt = %o, want the defaultMode 440", got)
	}
	for _, name := range []string{"a", "c"} {
		if _, err := os.Lstat(filepath.Join(dir, name)); !os.IsNotExist(err) {
			t.Errorf("key %s not listed in items is in the volume: %v", name, err)
		}
	}
}

func TestConfigMapVolumeUpdatesInPlace(t *testing.T) {
	src := newFakeSources()
	src.setConfigMap(testNS, "settings", map[string]string{"level": "info", "old": "x"})
	m, _ := newTestManager(t, src)
	pod := newPod("u1", configMapVolume("cfg", "settings", nil, nil, nil))

	dir := setup(t, m, pod)["cfg"].HostPath
	first := dataTarget(t, dir)

	if got := setup(t, m, pod)["cfg"].HostPath; got != dir {
		t.Fatalf("the volume moved from %s to %s", dir, got)
	}
	if got := dataTarget(t, dir); got != first {
		t.Errorf("an unchanged ConfigMap moved ..data from %s to %s", first, got)
	}

	src.setConfigMap(testNS, "settings", map[string]string{"level": "debug", "new": "y"})
	setup(t, m, pod)
	if got := dataTarget(t, dir); got == first {
		t.Error("a changed ConfigMap left ..data where it was")
	}
	if got := readVolumeFile(t, dir, "level"); got != "debug" {
		t.Errorf("level = %q after the update, want debug", got)
	}
	if got := readVolumeFile(t, dir, "new"); got != "y" {
		t.Errorf("new = %q after the update", got)
	}
	if _, err := os.Lstat(filepath.Join(dir, "old")); !os.IsNotExist(err) {
		t.Errorf("a key removed from the ConfigMap is still in the volume: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, first)); !os.IsNotExist(err) {
		t.Errorf("the previous payload directory %s is still there: %v", first, err)
	}
}

func TestConfigMapVolumeMissing(t *testing.T) {
	src := newFakeSources()
	src.setConfigMap(testNS, "partial", map[string]string{"have": "1"})
	m, _ := newTestManager(t, src)

	// Optional and missing: an empty volume.
	mounts := setup(t, m, newPod("u1",
		configMapVolume("opt", "absent", nil, nil, ptr(true)),
		configMapVolume("optkey", "partial", []corev1.KeyToPath{{Key: "have", Path: "h"}, {Key: "lack", Path: "l"}}, nil, ptr(true)),
	))
	dir := mounts["opt"].HostPath
	if dir == "" {
		t.Fatal("no mount for an optional missing ConfigMap")
	}
	if entries, err := os.ReadDir(dir); err != nil || len(entries) != 2 {
		t.Errorf("optional missing ConfigMap: volume holds %v (%v), want only ..data and its directory", entries, err)
	}
	keyDir := mounts["optkey"].HostPath
	if got := readVolumeFile(t, keyDir, "h"); got != "1" {
		t.Errorf("h = %q", got)
	}
	if _, err := os.Lstat(filepath.Join(keyDir, "l")); !os.IsNotExist(err) {
		t.Errorf("an optional missing key made a file: %v", err)
	}

	// Required and missing.
	pod := newPod("u2",
		configMapVolume("req", "absent", nil, nil, nil),
		configMapVolume("reqkey", "partial", []corev1.KeyToPath{{Key: "lack", Path: "l"}}, nil, ptr(false)),
		configMapVolume("fine", "partial", nil, nil, nil),
	)
	mounts, err := m.Setup(context.Background(), pod)
	if !errors.Is(err, ErrSourceNotFound) {
		t.Fatalf("error %v does not match ErrSourceNotFound", err)
	}
	if !apierrors.IsNotFound(err) {
		t.Errorf("error %v does not match apierrors.IsNotFound", err)
	}
	wantErrContains(t, err,
		`pod shop/web-u2: volume "req": configmap "absent" not found`,
		`pod shop/web-u2: volume "reqkey": configmap "partial" references non-existent config key: lack`)
	if _, ok := mounts["req"]; ok {
		t.Error("a failed volume has a mount")
	}
	if _, ok := mounts["fine"]; !ok {
		t.Error("a good volume next to failed ones was not set up")
	}
}

func TestConfigMapVolumeSourceError(t *testing.T) {
	src := newFakeSources()
	src.err = errors.New("connection refused")
	m, _ := newTestManager(t, src)
	_, err := m.Setup(context.Background(), newPod("u1", configMapVolume("cfg", "settings", nil, nil, ptr(true))))
	wantErrContains(t, err, `volume "cfg": get configmap "settings": connection refused`)
	if errors.Is(err, ErrSourceNotFound) {
		t.Error("a failing source is reported as a missing one")
	}
}

// An unreachable API server keeps what a volume already holds, so a node
// cut off from its control plane can restart containers; a volume never
// written, or the server's own answer, still fails.
func TestUnreachableSourcesKeepWrittenVolumes(t *testing.T) {
	src := newFakeSources()
	src.setConfigMap(testNS, "settings", map[string]string{"mode": "fast"})
	src.setSecret(testNS, "creds", map[string][]byte{"user": []byte("admin")})
	m, _ := newTestManager(t, src)
	pod := newPod("u1",
		configMapVolume("cfg", "settings", nil, nil, nil),
		vol("sec", corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "creds"}}))
	setup(t, m, pod)

	src.err = &url.Error{Op: "Get", URL: "https://127.0.0.1:6443/api/v1/namespaces/shop/configmaps/settings",
		Err: &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}}
	mounts := setup(t, m, pod)
	for vol, file := range map[string]string{"cfg": "mode", "sec": "user"} {
		data, err := os.ReadFile(filepath.Join(mounts[vol].HostPath, file))
		if err != nil {
			t.Fatalf("volume %s after the server went away: %v", vol, err)
		}
		if want := map[string]string{"cfg": "fast", "sec": "admin"}[vol]; string(data) != want {
			t.Errorf("volume %s holds %q, want %q", vol, data, want)
		}
	}
	if _, err := m.Setup(context.Background(), newPod("u2", configMapVolume("cfg", "settings", nil, nil, nil))); err == nil {
		t.Error("a volume never written was set up without its source")
	}

	src.err = nil
	src.mu.Lock()
	delete(src.configMaps, testNS+"/settings")
	src.mu.Unlock()
	if _, err := m.Setup(context.Background(), pod); !errors.Is(err, ErrSourceNotFound) {
		t.Errorf("a deleted ConfigMap answered by the server: %v, want ErrSourceNotFound", err)
	}
}

func TestSecretVolume(t *testing.T) {
	src := newFakeSources()
	src.setSecret(testNS, "creds", map[string][]byte{"password": []byte("s3cr\x00t"), "user": []byte("admin")})
	m, podsDir := newTestManager(t, src)

	pod := newPod("u1",
		vol("sec", corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "creds", DefaultMode: ptr[int32](0o400)}}),
		vol("one", corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "creds",
			Items: []corev1.KeyToPath{{Key: "user", Path: "u/name", Mode: ptr[int32](0o640)}}}}),
	)
	mounts := setup(t, m, pod)
	dir := filepath.Join(podsDir, "u1", "volumes", "kubernetes.io~secret", "sec")
	if got := mounts["sec"]; got != (Mount{HostPath: dir, ReadOnly: true}) {
		t.Fatalf("mount = %+v, want %s read-only", got, dir)
	}
	assertTmpfs(t, dir)
	if got := readVolumeFile(t, dir, "password"); got != "s3cr\x00t" {
		t.Errorf("password = %q", got)
	}
	if got := realMode(t, dir, "password"); got != 0o400 {
		t.Errorf("mode of password = %o, want 400", got)
	}
	one := mounts["one"].HostPath
	if got := readVolumeFile(t, one, "u/name"); got != "admin" {
		t.Errorf("u/name = %q", got)
	}
	if got := realMode(t, one, "u/name"); got != 0o640 {
		t.Errorf("mode of u/name = %o, want 640", got)
	}

	// A second sync mounts nothing more.
	setup(t, m, pod)
	assertTmpfs(t, dir)

	_, err := m.Setup(context.Background(), newPod("u2",
		vol("sec", corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "absent"}}),
		vol("key", corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "creds",
			Items: []corev1.KeyToPath{{Key: "token", Path: "t"}}}}),
	))
	if !errors.Is(err, ErrSourceNotFound) {
		t.Fatalf("error %v does not match ErrSourceNotFound", err)
	}
	wantErrContains(t, err, `volume "sec": secret "absent" not found`,
		`volume "key": secret "creds" references non-existent secret key: token`)

	if err := m.TearDown("u1"); err != nil {
		t.Fatal(err)
	}
	if pts := mountPointsBelow(t, podsDir); len(pts) != 0 {
		t.Errorf("mounts left after TearDown: %v", pts)
	}
}
