package volumes

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

func fieldItem(path, field string) corev1.DownwardAPIVolumeFile {
	return corev1.DownwardAPIVolumeFile{Path: path, FieldRef: &corev1.ObjectFieldSelector{FieldPath: field}}
}

func resourceItem(path, container, res, divisor string) corev1.DownwardAPIVolumeFile {
	sel := &corev1.ResourceFieldSelector{ContainerName: container, Resource: res}
	if divisor != "" {
		sel.Divisor = resource.MustParse(divisor)
	}
	return corev1.DownwardAPIVolumeFile{Path: path, ResourceFieldRef: sel}
}

func downwardVolume(name string, defaultMode *int32, items ...corev1.DownwardAPIVolumeFile) corev1.Volume {
	return vol(name, corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{Items: items, DefaultMode: defaultMode}})
}

func downwardPod() *corev1.Pod {
	pod := newPod("u1")
	pod.Labels = map[string]string{"tier": "front", "app": "web", "example.com/team": "a b"}
	pod.Annotations = map[string]string{
		"note":        "say \"hi\"\nand\tleave",
		"unicode":     "café ☕",
		"example/ctl": `C:\path`,
	}
	pod.Spec.NodeName = "edge-1"
	pod.Spec.ServiceAccountName = "builder"
	pod.Status.PodIP, pod.Status.HostIP = "10.42.0.7", "192.168.1.10"
	pod.Status.PodIPs = []corev1.PodIP{{IP: "10.42.0.7"}, {IP: "fd00::7"}}
	pod.Spec.Containers = []corev1.Container{{
		Name: "app",
		Resources: corev1.ResourceRequirements{
			Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("1000001")},
		},
	}}
	pod.Spec.InitContainers = []corev1.Container{{Name: "prep"}}
	return pod
}

func TestDownwardAPIVolume(t *testing.T) {
	m, _ := newTestManager(t, newFakeSources(), WithNodeAllocatable(corev1.ResourceList{
		corev1.ResourceCPU:              resource.MustParse("2"),
		corev1.ResourceMemory:           resource.MustParse("2Gi"),
		corev1.ResourceEphemeralStorage: resource.MustParse("10G"),
	}))
	want := map[string]string{
		"labels": "app=\"web\"\nexample.com/team=\"a b\"\ntier=\"front\"",
		"annotations": "example/ctl=\"C:\\\\path\"\n" +
			"note=\"say \\\"hi\\\"\\nand\\tleave\"\n" +
			"unicode=\"café ☕\"",
		"tier":          "front",
		"note":          "say \"hi\"\nand\tleave",
		"meta/name":     "web-u1",
		"meta/ns":       "shop",
		"meta/uid":      "u1",
		"node":          "edge-1",
		"sa":            "builder",
		"pod-ip":        "10.42.0.7",
		"pod-ips":       "10.42.0.7,fd00::7",
		"host-ip":       "192.168.1.10",
		"host-ips":      "192.168.1.10",
		"cpu-limit-m":   "250",
		"cpu-limit":     "1",
		"mem-limit-mi":  "64",
		"mem-request-m": "2",
		"cpu-request":   "1",
		"prep-cpu":      "2",
		"prep-memory":   "2048",
		"prep-storage":  "10",
		"prep-req-cpu":  "0",
	}
	pod := downwardPod()
	pod.Spec.Volumes = []corev1.Volume{downwardVolume("info", ptr[int32](0o440),
		fieldItem("labels", "metadata.labels"),
		fieldItem("annotations", "metadata.annotations"),
		fieldItem("tier", "metadata.labels['tier']"),
		fieldItem("note", "metadata.annotations['note']"),
		fieldItem("meta/name", "metadata.name"),
		fieldItem("meta/ns", "metadata.namespace"),
		fieldItem("meta/uid", "metadata.uid"),
		fieldItem("node", "spec.nodeName"),
		fieldItem("sa", "spec.serviceAccountName"),
		fieldItem("pod-ip", "status.podIP"),
		fieldItem("pod-ips", "status.podIPs"),
		fieldItem("host-ip", "status.hostIP"),
		fieldItem("host-ips", "status.hostIPs"),
		resourceItem("cpu-limit-m", "app", "limits.cpu", "1m"),
		resourceItem("cpu-limit", "app", "limits.cpu", ""),
		resourceItem("mem-limit-mi", "app", "limits.memory", "1Mi"),
		resourceItem("mem-request-m", "app", "requests.memory", "1M"),
		resourceItem("cpu-request", "app", "requests.cpu", ""),
		// No limits: the node's allocatable amounts stand in.
		resourceItem("prep-cpu", "prep", "limits.cpu", ""),
		resourceItem("prep-memory", "prep", "limits.memory", "1Mi"),
		resourceItem("prep-storage", "prep", "limits.ephemeral-storage", "1G"),
		resourceItem("prep-req-cpu", "prep", "requests.cpu", ""),
	)}
	pod.Spec.Volumes[0].DownwardAPI.Items[0].Mode = ptr[int32](0o600)

	mounts := setup(t, m, pod)
	dir := mounts["info"].HostPath
	if !mounts["info"].ReadOnly {
		t.Error("a downwardAPI volume is not read-only")
	}
	assertTmpfs(t, dir)
	for name, content := range want {
		if got := readVolumeFile(t, dir, name); got != content {
			t.Errorf("%s = %q, want %q", name, got, content)
		}
	}
	if got := realMode(t, dir, "labels"); got != 0o600 {
		t.Errorf("mode of labels = %o, want the item's 600", got)
	}
	if got := realMode(t, dir, "meta/name"); got != 0o440 {
		t.Errorf("mode of meta/name = %o, want the defaultMode 440", got)
	}

	// Labels change while the pod runs: the next sync shows them.
	first := dataTarget(t, dir)
	pod.Labels["tier"] = "back"
	setup(t, m, pod)
	if got := readVolumeFile(t, dir, "tier"); got != "back" {
		t.Errorf("tier = %q after the label changed", got)
	}
	if dataTarget(t, dir) == first {
		t.Error("changed labels left ..data where it was")
	}
}

func TestDownwardAPIErrors(t *testing.T) {
	m, _ := newTestManager(t, newFakeSources())
	pod := downwardPod()
	pod.Spec.Volumes = []corev1.Volume{
		downwardVolume("bad-field", nil, fieldItem("x", "spec.restartPolicy")),
		downwardVolume("bad-sub", nil, fieldItem("x", "metadata.name['a']")),
		downwardVolume("bad-key", nil, fieldItem("x", "metadata.labels['not a key']")),
		downwardVolume("bad-version", nil, corev1.DownwardAPIVolumeFile{Path: "x",
			FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v2", FieldPath: "metadata.name"}}),
		downwardVolume("bad-container", nil, resourceItem("x", "ghost", "limits.cpu", "")),
		downwardVolume("bad-resource", nil, resourceItem("x", "app", "limits.gpu", "")),
		downwardVolume("bad-kind", nil, resourceItem("x", "app", "usage.cpu", "")),
		downwardVolume("bad-path", nil, fieldItem("../escape", "metadata.name")),
	}
	mounts, err := m.Setup(context.Background(), pod)
	wantErrContains(t, err,
		`volume "bad-field": x: unsupported fieldPath: spec.restartPolicy`,
		`volume "bad-sub": x: fieldPath "metadata.name['a']" does not support subscript`,
		`volume "bad-key": x: invalid key subscript in metadata.labels['not a key']`,
		`volume "bad-version": x: unsupported pod version: v2`,
		`volume "bad-container": x: container ghost not found`,
		`volume "bad-resource": x: unsupported container resource : limits.gpu`,
		`volume "bad-kind": x: unsupported container resource : usage.cpu`,
		`volume "bad-path": invalid path: must not contain '..': ../escape`,
	)
	if len(mounts) != 0 {
		t.Errorf("failed volumes have mounts: %v", mounts)
	}
}

// TestResourceFieldValue covers what volumes decide for themselves around
// the shared resolution: which containers get stand-in limits, where those
// come from, and which selectors are refused.
func TestResourceFieldValue(t *testing.T) {
	podLevel := &corev1.ResourceRequirements{Limits: corev1.ResourceList{
		corev1.ResourceCPU: resource.MustParse("1500m"), corev1.ResourceEphemeralStorage: resource.MustParse("5Gi")}}
	alloc := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourceEphemeralStorage: resource.MustParse("10G")}
	tests := []struct {
		name  string
		alloc corev1.ResourceList
		pod   *corev1.ResourceRequirements
		item  corev1.DownwardAPIVolumeFile
		want  string // "error: " and the message when it should fail
	}{
		{name: "init container from allocatable", alloc: alloc,
			item: resourceItem("x", "prep", "limits.cpu", "1m"), want: "2000"},
		{name: "pod-level limit before allocatable", alloc: alloc, pod: podLevel,
			item: resourceItem("x", "prep", "limits.cpu", "1m"), want: "1500"},
		{name: "pod-level limit without allocatable", pod: podLevel,
			item: resourceItem("x", "prep", "limits.cpu", "1m"), want: "1500"},
		{name: "no pod-level ephemeral-storage", alloc: alloc, pod: podLevel,
			item: resourceItem("x", "prep", "limits.ephemeral-storage", "1G"), want: "10"},
		{name: "nothing to stand in", item: resourceItem("x", "prep", "limits.memory", ""), want: "0"},
		{name: "container's own limit", alloc: alloc, pod: podLevel,
			item: resourceItem("x", "app", "limits.cpu", "1m"), want: "250"},
		{name: "negative divisor", item: resourceItem("x", "app", "limits.cpu", "-1"),
			want: "error: invalid divisor for limits.cpu"},
		{name: "negative divisor, bad resource", item: resourceItem("x", "app", "limits.gpu", "-1"),
			want: "error: unsupported container resource : limits.gpu"},
		{name: "container name required", item: resourceItem("x", "", "limits.cpu", ""),
			want: "error: container  not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := New(t.TempDir(), newFakeSources(), WithNodeAllocatable(tt.alloc))
			pod := downwardPod()
			pod.Spec.Resources = tt.pod
			got, err := m.resourceFieldValue(pod, tt.item.ResourceFieldRef)
			if err != nil {
				got = "error: " + err.Error()
			}
			if got != tt.want {
				t.Errorf("resourceFieldValue(%s) = %q, want %q", tt.item.ResourceFieldRef.Resource, got, tt.want)
			}
		})
	}
}
