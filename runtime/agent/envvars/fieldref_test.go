package envvars

import (
	"context"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// resolveVar resolves the single variable V, taken from vs, in container
// index i of pod, and returns its value.
func resolveVar(pod *corev1.Pod, i int, vs *corev1.EnvVarSource, opts Options) (string, error) {
	c := &pod.Spec.Containers[i]
	c.Env = []corev1.EnvVar{{Name: "V", ValueFrom: vs}}
	env, _, err := Resolve(context.Background(), sources(), pod, c, opts)
	if err != nil {
		return "", err
	}
	if len(env) != 1 || !strings.HasPrefix(env[0], "V=") {
		return "", fmt.Errorf("env = %q, want just V", env)
	}
	return strings.TrimPrefix(env[0], "V="), nil
}

// checkVar compares a resolveVar result with want, or with wantErr when
// that is set.
func checkVar(t *testing.T, got string, err error, want, wantErr string) {
	t.Helper()
	switch {
	case wantErr != "" && (err == nil || err.Error() != wantErr):
		t.Errorf("got %q, %v; want error %q", got, err, wantErr)
	case wantErr == "" && err != nil:
		t.Errorf("error %v, want %q", err, want)
	case wantErr == "" && got != want:
		t.Errorf("got %q, want %q", got, want)
	}
}

func fieldPod() *corev1.Pod {
	pod := testPod(corev1.Container{Name: "app"})
	pod.Labels = map[string]string{"app": "web", "example.com/tier": "front"}
	pod.Annotations = map[string]string{"note": "say \"hi\"\n", "Example.com/Key": "v"}
	pod.Spec.NodeName = "edge-1"
	pod.Spec.ServiceAccountName = "robot"
	pod.Status.HostIPs = []corev1.HostIP{{IP: "192.168.1.5"}, {IP: "fd00::5"}}
	pod.Status.PodIPs = []corev1.PodIP{{IP: "10.1.0.7"}, {IP: "fd10::7"}}
	return pod
}

func TestFieldRef(t *testing.T) {
	dual := Options{HostIPs: []string{"192.168.1.9"}, PodIPs: []string{"fd10::8", "junk", "10.1.0.8", "10.1.0.9"}}
	v6First := Options{HostIPs: []string{"fd00::9", "192.168.1.9"}, PodIPs: []string{"10.1.0.8", "fd10::8"}}
	legacy := func(p *corev1.Pod) {
		p.Status.HostIPs, p.Status.PodIPs = nil, nil
		p.Status.HostIP, p.Status.PodIP = "192.168.1.1", "10.1.0.1"
	}
	noIPs := func(p *corev1.Pod) { p.Status = corev1.PodStatus{} }
	tests := []struct {
		path, version string
		opts          Options
		edit          func(*corev1.Pod)
		want, err     string
	}{
		{path: "metadata.name", want: "web-0"},
		{path: "metadata.name", version: "v1", want: "web-0"},
		{path: "metadata.namespace", want: "default"},
		{path: "metadata.uid", want: "uid-1"},
		{path: "metadata.labels['app']", want: "web"},
		{path: "metadata.labels['example.com/tier']", want: "front"},
		{path: "metadata.labels['absent']", want: ""},
		{path: "metadata.labels", want: "app=\"web\"\nexample.com/tier=\"front\""},
		{path: "metadata.annotations['note']", want: "say \"hi\"\n"},
		{path: "metadata.annotations['Example.com/Key']", want: "v"},
		{path: "metadata.annotations", want: "Example.com/Key=\"v\"\nnote=\"say \\\"hi\\\"\\n\""},
		{path: "spec.nodeName", want: "edge-1"},
		{path: "spec.host", want: "edge-1"},
		{path: "spec.serviceAccountName", want: "robot"},
		{path: "status.hostIP", want: "192.168.1.5"},
		{path: "status.hostIPs", want: "192.168.1.5,fd00::5"},
		{path: "status.podIP", want: "10.1.0.7"},
		{path: "status.podIPs", want: "10.1.0.7,fd10::7"},
		{path: "status.hostIP", opts: dual, want: "192.168.1.9"},
		{path: "status.podIP", opts: dual, want: "10.1.0.8"},
		{path: "status.podIPs", opts: dual, want: "10.1.0.8,fd10::8"},
		{path: "status.hostIPs", opts: v6First, want: "fd00::9,192.168.1.9"},
		{path: "status.podIP", opts: v6First, want: "fd10::8"},
		{path: "status.podIPs", opts: v6First, want: "fd10::8,10.1.0.8"},
		{path: "status.hostIPs", edit: legacy, want: "192.168.1.1"},
		{path: "status.podIPs", edit: legacy, want: "10.1.0.1"},
		{path: "status.podIP", edit: noIPs, want: ""},
		{path: "status.hostIP", edit: noIPs, err: "host IP unknown; known addresses: []"},
		{path: "metadata.name", version: "v2", err: "unsupported pod version: v2"},
		{path: "metadata.labels['Example.com/x']", err: "invalid key subscript in metadata.labels['Example.com/x']: " +
			"prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', " +
			"and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is " +
			"'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"},
		{path: "spec.nodeName['x']", err: "field label does not support subscript: spec.nodeName['x']"},
		{path: "status.phase", err: "unsupported fieldPath: status.phase"},
		{path: "metadata.generateName", err: "field label not supported: metadata.generateName"},
	}
	for _, tt := range tests {
		pod := fieldPod()
		if tt.edit != nil {
			tt.edit(pod)
		}
		vs := &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: tt.version, FieldPath: tt.path}}
		got, err := resolveVar(pod, 0, vs, tt.opts)
		t.Run(tt.path, func(t *testing.T) { checkVar(t, got, err, tt.want, tt.err) })
	}
}

func q(s string) resource.Quantity { return resource.MustParse(s) }

func resourcePod() *corev1.Pod {
	pod := testPod(
		corev1.Container{Name: "app", Resources: corev1.ResourceRequirements{
			Limits: corev1.ResourceList{"cpu": q("500m"), "memory": q("128Mi"), "hugepages-2Mi": q("4Mi")},
			Requests: corev1.ResourceList{"cpu": q("250m"), "memory": q("64Mi"),
				"ephemeral-storage": q("1Gi"), "hugepages-2Mi": q("4Mi")},
		}},
		corev1.Container{Name: "sidecar", Resources: corev1.ResourceRequirements{
			Limits:   corev1.ResourceList{"cpu": q("0")},
			Requests: corev1.ResourceList{"cpu": q("100m")},
		}},
	)
	pod.Spec.InitContainers = []corev1.Container{{Name: "init"}}
	return pod
}

func TestResourceFieldRef(t *testing.T) {
	alloc := Options{NodeAllocatable: corev1.ResourceList{"cpu": q("2"), "memory": q("4Gi"), "ephemeral-storage": q("10Gi")}}
	podLevel := func(p *corev1.Pod) {
		p.Spec.Resources = &corev1.ResourceRequirements{Limits: corev1.ResourceList{
			"cpu": q("1500m"), "memory": q("1Gi"), "ephemeral-storage": q("5Gi")}}
	}
	tests := []struct {
		name      string
		in        int    // the container that declares the variable
		container string // resourceFieldRef.containerName
		res       string
		divisor   string
		edit      func(*corev1.Pod)
		opts      Options
		want, err string
	}{
		{name: "cpu rounds up to whole cores", res: "limits.cpu", want: "1"},
		{name: "cpu in millicores", res: "limits.cpu", divisor: "1m", want: "500"},
		{name: "divisor 0 means 1", res: "requests.cpu", divisor: "0", want: "1"},
		{name: "cpu request in millicores", res: "requests.cpu", divisor: "1m", want: "250"},
		{name: "memory in bytes", res: "limits.memory", want: "134217728"},
		{name: "memory in Mi", res: "limits.memory", divisor: "1Mi", want: "128"},
		{name: "memory in M rounds up", res: "limits.memory", divisor: "1M", want: "135"},
		{name: "memory request in Ki", res: "requests.memory", divisor: "1Ki", want: "65536"},
		{name: "ephemeral-storage request in M", res: "requests.ephemeral-storage", divisor: "1M", want: "1074"},
		{name: "hugepages limit", res: "limits.hugepages-2Mi", divisor: "1Mi", want: "4"},
		{name: "hugepages request", res: "requests.hugepages-2Mi", want: "4194304"},
		{name: "unset limit without allocatable", res: "limits.ephemeral-storage", want: "0"},
		{name: "unset limit from allocatable", res: "limits.ephemeral-storage", divisor: "1Gi", opts: alloc, want: "10"},
		{name: "own zero limit from allocatable", in: 1, res: "limits.cpu", opts: alloc, want: "2"},
		{name: "own unset limit from allocatable", in: 1, res: "limits.memory", divisor: "1Mi", opts: alloc, want: "4096"},
		{name: "requests are not defaulted", in: 1, res: "requests.memory", opts: alloc, want: "0"},
		{name: "named container", container: "sidecar", res: "requests.cpu", divisor: "1m", want: "100"},
		{name: "named container from allocatable", container: "sidecar", res: "limits.memory", divisor: "1Gi", opts: alloc, want: "4"},
		{name: "named init container is not defaulted", container: "init", res: "limits.cpu", opts: alloc, want: "0"},
		{name: "set limits win over pod-level", res: "limits.cpu", divisor: "1m", edit: podLevel, opts: alloc, want: "500"},
		{name: "pod-level cpu limit", in: 1, res: "limits.cpu", divisor: "1m", edit: podLevel, opts: alloc, want: "1500"},
		{name: "pod-level memory limit", in: 1, res: "limits.memory", divisor: "1Mi", edit: podLevel, opts: alloc, want: "1024"},
		{name: "no pod-level ephemeral-storage", in: 1, res: "limits.ephemeral-storage", divisor: "1Gi", edit: podLevel, opts: alloc, want: "10"},
		{name: "pod-level needs allocatable", in: 1, res: "limits.cpu", edit: podLevel, want: "0"},
		{name: "unknown container", container: "nope", res: "limits.cpu", err: "container nope not found"},
		{name: "extended resource", res: "limits.example.com/gpu", err: "unsupported container resource : limits.example.com/gpu"},
		{name: "bad kind", res: "used.cpu", err: "unsupported container resource : used.cpu"},
		{name: "no kind", res: "cpu", err: "unsupported container resource : cpu"},
	}
	for _, tt := range tests {
		pod := resourcePod()
		if tt.edit != nil {
			tt.edit(pod)
		}
		sel := &corev1.ResourceFieldSelector{ContainerName: tt.container, Resource: tt.res}
		if tt.divisor != "" {
			sel.Divisor = q(tt.divisor)
		}
		got, err := resolveVar(pod, tt.in, &corev1.EnvVarSource{ResourceFieldRef: sel}, tt.opts)
		t.Run(tt.name, func(t *testing.T) { checkVar(t, got, err, tt.want, tt.err) })
	}
}
