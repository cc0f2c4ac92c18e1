package volumes

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

type tokenCall struct {
	pod      string
	audience string
	exp      int64
}

func projectedPod(sources ...corev1.VolumeProjection) *corev1.Pod {
	return newPod("u1", vol("all", corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
		Sources: sources, DefaultMode: ptr[int32](0o444),
	}}))
}

func TestProjectedVolume(t *testing.T) {
	src := newFakeSources()
	src.setConfigMap(testNS, "settings", map[string]string{"level": "info", "other": "x"})
	src.setSecret(testNS, "creds", map[string][]byte{"password": []byte("pw")})
	var calls []tokenCall
	m, podsDir := newTestManager(t, src, WithTokenSource(func(_ context.Context, pod *corev1.Pod, audience string, exp int64) (string, error) {
		calls = append(calls, tokenCall{pod.Name, audience, exp})
		return "token-for-" + audience, nil
	}))
	pod := projectedPod(
		corev1.VolumeProjection{ConfigMap: &corev1.ConfigMapProjection{
			LocalObjectReference: corev1.LocalObjectReference{Name: "settings"},
			Items:                []corev1.KeyToPath{{Key: "level", Path: "config/level"}},
		}},
		corev1.VolumeProjection{Secret: &corev1.SecretProjection{
			LocalObjectReference: corev1.LocalObjectReference{Name: "creds"},
			Items:                []corev1.KeyToPath{{Key: "password", Path: "secret/password", Mode: ptr[int32](0o400)}},
		}},
		corev1.VolumeProjection{Secret: &corev1.SecretProjection{
			LocalObjectReference: corev1.LocalObjectReference{Name: "absent"}, Optional: ptr(true),
		}},
		corev1.VolumeProjection{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{
			fieldItem("name", "metadata.name"),
		}}},
		corev1.VolumeProjection{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token"}},
		corev1.VolumeProjection{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{
			Path: "vault-token", Audience: "vault", ExpirationSeconds: ptr[int64](600),
		}},
	)
	mounts := setup(t, m, pod)
	dir := filepath.Join(podsDir, "u1", "volumes", "kubernetes.io~projected", "all")
	if got := mounts["all"]; got != (Mount{HostPath: dir, ReadOnly: true}) {
		t.Fatalf("mount = %+v, want %s read-only", got, dir)
	}
	assertTmpfs(t, dir)
	for name, want := range map[string]string{
		"config/level": "info", "secret/password": "pw", "name": "web-u1",
		"token": "token-for-", "vault-token": "token-for-vault",
	} {
		if got := readVolumeFile(t, dir, name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	for name, want := range map[string]uint32{"config/level": 0o444, "secret/password": 0o400, "token": 0o444} {
		if got := realMode(t, dir, name); uint32(got) != want {
			t.Errorf("mode of %s = %o, want %o", name, got, want)
		}
	}
	wantCalls := []tokenCall{{"web-u1", "", 3600}, {"web-u1", "vault", 600}}
	if len(calls) != 2 || calls[0] != wantCalls[0] || calls[1] != wantCalls[1] {
		t.Errorf("token requests %+v, want %+v", calls, wantCalls)
	}
}

func TestProjectedVolumeErrors(t *testing.T) {
	src := newFakeSources()
	src.setConfigMap(testNS, "settings", map[string]string{"level": "info"})
	m, _ := newTestManager(t, src)
	pod := projectedPod(
		corev1.VolumeProjection{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "settings"}}},
		corev1.VolumeProjection{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token"}},
		corev1.VolumeProjection{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "absent"}}},
		corev1.VolumeProjection{ClusterTrustBundle: &corev1.ClusterTrustBundleProjection{Path: "ca.pem"}},
	)
	mounts, err := m.Setup(context.Background(), pod)
	wantErrContains(t, err,
		`volume "all": service account tokens are not available on this node`,
		`configmap "absent" not found`,
		`clusterTrustBundle projections are not supported by this node`)
	if !errors.Is(err, ErrSourceNotFound) {
		t.Errorf("error %v does not match ErrSourceNotFound", err)
	}
	if _, ok := mounts["all"]; ok {
		t.Error("a projected volume with failing sources has a mount")
	}

	failing, _ := newTestManager(t, src, WithTokenSource(func(context.Context, *corev1.Pod, string, int64) (string, error) {
		return "", errors.New("token request denied")
	}))
	pod = projectedPod(corev1.VolumeProjection{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token"}})
	pod.Spec.ServiceAccountName = "builder"
	_, err = failing.Setup(context.Background(), pod)
	wantErrContains(t, err, `token of service account "builder" for "token": token request denied`)
}
