package fieldpath

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func testPod() *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: "web-0", Namespace: "shop", UID: "uid-1",
			Labels:      map[string]string{"app": "web", "example.com/tier": "front"},
			Annotations: map[string]string{"note": "say \"hi\"\n", "Example.com/Key": "v"},
		},
		Spec: corev1.PodSpec{NodeName: "edge-1", ServiceAccountName: "robot"},
	}
}

func TestFieldValue(t *testing.T) {
	dual := IPs{Host: []string{"192.168.1.5", "fd00::5"}, Pod: []string{"10.1.0.7", "fd10::7"}}
	tests := []struct {
		name, path, version string
		ips                 IPs
		want                string // "error: " and the message when it should fail
	}{
		{name: "name", path: "metadata.name", want: "web-0"},
		{name: "version v1", path: "metadata.name", version: "v1", want: "web-0"},
		{name: "namespace", path: "metadata.namespace", want: "shop"},
		{name: "uid", path: "metadata.uid", want: "uid-1"},
		{name: "all labels", path: "metadata.labels", want: "app=\"web\"\nexample.com/tier=\"front\""},
		{name: "all annotations", path: "metadata.annotations", want: "Example.com/Key=\"v\"\nnote=\"say \\\"hi\\\"\\n\""},
		{name: "label", path: "metadata.labels['app']", want: "web"},
		{name: "prefixed label", path: "metadata.labels['example.com/tier']", want: "front"},
		{name: "missing label", path: "metadata.labels['absent']", want: ""},
		{name: "annotation", path: "metadata.annotations['note']", want: "say \"hi\"\n"},
		// Annotation keys are checked in lower case but looked up as given.
		{name: "upper-case annotation", path: "metadata.annotations['Example.com/Key']", want: "v"},
		{name: "node", path: "spec.nodeName", want: "edge-1"},
		{name: "service account", path: "spec.serviceAccountName", want: "robot"},
		{name: "host IP is the first", path: "status.hostIP", ips: dual, want: "192.168.1.5"},
		{name: "host IPs", path: "status.hostIPs", ips: dual, want: "192.168.1.5,fd00::5"},
		{name: "pod IP is the first", path: "status.podIP", ips: dual, want: "10.1.0.7"},
		{name: "pod IPs", path: "status.podIPs", ips: dual, want: "10.1.0.7,fd10::7"},
		{name: "no host IP", path: "status.hostIP", want: ""},
		{name: "no pod IPs", path: "status.podIPs", want: ""},
		{name: "other version", path: "metadata.name", version: "v2", want: "error: unsupported pod version: v2"},
		{name: "upper-case label", path: "metadata.labels['Example.com/x']",
			want: "error: invalid key subscript in metadata.labels['Example.com/x']: prefix part a lowercase RFC 1123 subdomain " +
				"must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric " +
				"character (e.g. 'example.com', regex used for validation is " +
				"'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"},
		{name: "empty key", path: "metadata.labels['']",
			want: "error: invalid key subscript in metadata.labels['']: name part must be non-empty;name part must consist " +
				"of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character " +
				"(e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"},
		{name: "subscript of a string", path: "metadata.name['a']",
			want: `error: fieldPath "metadata.name['a']" does not support subscript`},
		// The v1 alias and the labels that have no value here are the
		// caller's to handle.
		{name: "old host label", path: "spec.host", want: "error: unsupported fieldPath: spec.host"},
		{name: "phase", path: "status.phase", want: "error: unsupported fieldPath: status.phase"},
		{name: "empty", path: "", want: "error: unsupported fieldPath: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := &corev1.ObjectFieldSelector{APIVersion: tt.version, FieldPath: tt.path}
			got, err := FieldValue(testPod(), fs, tt.ips)
			if err != nil {
				got = "error: " + err.Error()
			}
			if got != tt.want {
				t.Errorf("FieldValue(%q) = %q, want %q", tt.path, got, tt.want)
			}
		})
	}
}

func TestStatusIPs(t *testing.T) {
	tests := []struct {
		name       string
		status     corev1.PodStatus
		host, pods []string
	}{
		{name: "none"},
		{
			name: "lists",
			status: corev1.PodStatus{
				HostIP: "192.168.1.5", HostIPs: []corev1.HostIP{{IP: "192.168.1.5"}, {IP: "fd00::5"}},
				PodIP: "10.1.0.7", PodIPs: []corev1.PodIP{{IP: "10.1.0.7"}, {IP: "fd10::7"}},
			},
			host: []string{"192.168.1.5", "fd00::5"},
			pods: []string{"10.1.0.7", "fd10::7"},
		},
		{
			name:   "single addresses of an old status",
			status: corev1.PodStatus{HostIP: "192.168.1.1", PodIP: "10.1.0.1"},
			host:   []string{"192.168.1.1"},
			pods:   []string{"10.1.0.1"},
		},
		{
			name:   "host only",
			status: corev1.PodStatus{HostIPs: []corev1.HostIP{{IP: "fd00::5"}}},
			host:   []string{"fd00::5"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := StatusIPs(&corev1.Pod{Status: tt.status})
			if !slices.Equal(got.Host, tt.host) || !slices.Equal(got.Pod, tt.pods) {
				t.Errorf("StatusIPs = %+v, want host %q, pod %q", got, tt.host, tt.pods)
			}
		})
	}
}

func TestSplitSubscript(t *testing.T) {
	tests := []struct {
		in        string
		path, key string
		ok        bool
	}{
		{in: "metadata.labels['app']", path: "metadata.labels", key: "app", ok: true},
		{in: "metadata.annotations['a/b']", path: "metadata.annotations", key: "a/b", ok: true},
		{in: "metadata.labels['']", path: "metadata.labels", key: "", ok: true},
		{in: "metadata.labels['a['b']", path: "metadata.labels", key: "a['b", ok: true},
		{in: "metadata.labels"},
		{in: "['app']"},
		{in: "metadata.labels[app]"},
		{in: "metadata.labels[']"},
		{in: "metadata.labels['app'"},
	}
	for _, tt := range tests {
		path, key, ok := SplitSubscript(tt.in)
		if path != tt.path || key != tt.key || ok != tt.ok {
			t.Errorf("SplitSubscript(%q) = %q, %q, %v; want %q, %q, %v", tt.in, path, key, ok, tt.path, tt.key, tt.ok)
		}
	}
}

func TestFormatMap(t *testing.T) {
	tests := []struct {
		name string
		in   map[string]string
		want string
	}{
		{name: "nil", in: nil, want: ""},
		{name: "one", in: map[string]string{"a": "b"}, want: `a="b"`},
		{name: "key order", in: map[string]string{"b": "2", "a": "1", "B": "0"}, want: "B=\"0\"\na=\"1\"\nb=\"2\""},
		{name: "escapes", in: map[string]string{"b": "\x00\u2028", "a": ""}, want: "a=\"\"\nb=\"\\x00\\u2028\""},
		{name: "quotes and newlines", in: map[string]string{"k": "say \"hi\"\nand\tleave"},
			want: `k="say \"hi\"\nand\tleave"`},
		{name: "unicode kept", in: map[string]string{"k": "café ☕"}, want: `k="café ☕"`},
	}
	for _, tt := range tests {
		if got := FormatMap(tt.in); got != tt.want {
			t.Errorf("%s: FormatMap = %q, want %q", tt.name, got, tt.want)
		}
	}
}
