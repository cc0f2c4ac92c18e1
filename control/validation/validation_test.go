package validation

import (
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/wasmkube/wasmkube/control/defaults"
)

func newPod(name string) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "c", Image: "nginx:1.27"}},
		},
	}
	defaults.Apply(p)
	return p
}

func newDeployment() *appsv1.Deployment {
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx"}}},
			},
		},
	}
	defaults.Apply(d)
	return d
}

func newService() *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "web"},
			Ports:    []corev1.ServicePort{{Port: 80}},
		},
	}
	defaults.Apply(s)
	return s
}

func errStrings(t *testing.T, obj runtime.Object, old runtime.Object) []string {
	t.Helper()
	errs := Validate(obj)
	if old != nil {
		errs = ValidateUpdate(obj, old)
	}
	out := make([]string, 0, len(errs))
	for _, e := range errs {
		out = append(out, e.Error())
	}
	return out
}

func TestValidateExactMessages(t *testing.T) {
	tests := []struct {
		name string
		obj  func() runtime.Object
		old  func() runtime.Object
		want []string
	}{
		{
			name: "bad pod name",
			obj:  func() runtime.Object { return newPod("Bad_Name") },
			want: []string{`metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')`},
		},
		{
			name: "missing name",
			obj:  func() runtime.Object { return newPod("") },
			want: []string{`metadata.name: Required value: name or generateName is required`},
		},
		{
			name: "namespace name must be a DNS label",
			obj: func() runtime.Object {
				ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "a.b"}}
				defaults.Apply(ns)
				return ns
			},
			want: []string{`metadata.name: Invalid value: "a.b": must not contain dots`},
		},
		{
			name: "namespace forbidden on cluster-scoped kinds",
			obj: func() runtime.Object {
				return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", Namespace: "default"}}
			},
			want: []string{`metadata.namespace: Forbidden: not allowed on this type`},
		},
		{
			name: "namespace required on namespaced kinds",
			obj: func() runtime.Object {
				return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cm"}}
			},
			want: []string{`metadata.namespace: Required value`},
		},
		{
			name: "bad label key and value",
			obj: func() runtime.Object {
				p := newPod("p")
				p.Labels = map[string]string{"bad key": "ok", "k": "-bad-"}
				return p
			},
			want: []string{
				`metadata.labels: Invalid value: "bad key": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')`,
				`metadata.labels: Invalid value: "-bad-": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')`,
			},
		},
		{
			name: "missing image",
			obj: func() runtime.Object {
				p := newPod("p")
				p.Spec.Containers[0].Image = ""
				return p
			},
			want: []string{`spec.containers[0].image: Required value`},
		},
		{
			name: "no containers",
			obj: func() runtime.Object {
				p := newPod("p")
				p.Spec.Containers = nil
				return p
			},
			want: []string{`spec.containers: Required value`},
		},
		{
			name: "unknown volume mount",
			obj: func() runtime.Object {
				p := newPod("p")
				p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "x", MountPath: "/x"}}
				return p
			},
			want: []string{`spec.containers[0].volumeMounts[0].name: Not found: "x"`},
		},
		{
			name: "duplicate container names and bad port",
			obj: func() runtime.Object {
				p := newPod("p")
				c := p.Spec.Containers[0]
				c.Ports = []corev1.ContainerPort{{ContainerPort: 70000, Protocol: "TCP"}}
				p.Spec.Containers = append(p.Spec.Containers, c)
				return p
			},
			want: []string{
				`spec.containers[1].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive`,
				`spec.containers[1].name: Duplicate value: "c"`,
			},
		},
		{
			name: "requests above limits",
			obj: func() runtime.Object {
				p := newPod("p")
				p.Spec.Containers[0].Resources = corev1.ResourceRequirements{
					Limits:   corev1.ResourceList{corev1.ResourceCPU: resourceMust("100m")},
					Requests: corev1.ResourceList{corev1.ResourceCPU: resourceMust("200m")},
				}
				return p
			},
			want: []string{`spec.containers[0].resources.requests: Invalid value: "200m": must be less than or equal to cpu limit of 100m`},
		},
		{
			name: "probe with two handlers",
			obj: func() runtime.Object {
				p := newPod("p")
				p.Spec.Containers[0].LivenessProbe = &corev1.Probe{
					ProbeHandler: corev1.ProbeHandler{
						Exec:      &corev1.ExecAction{Command: []string{"true"}},
						TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(80)},
					},
					TimeoutSeconds: 1, PeriodSeconds: 10, SuccessThreshold: 1, FailureThreshold: 3,
				}
				return p
			},
			want: []string{`spec.containers[0].livenessProbe.tcpSocket: Forbidden: may not specify more than 1 handler type`},
		},
		{
			name: "bad restart policy",
			obj: func() runtime.Object {
				p := newPod("p")
				p.Spec.RestartPolicy = "Sometimes"
				return p
			},
			want: []string{`spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"`},
		},
		{
			name: "deployment selector does not match template",
			obj: func() runtime.Object {
				d := newDeployment()
				d.Spec.Template.Labels = map[string]string{"app": "other"}
				return d
			},
			want: []string{"spec.template.metadata.labels: Invalid value: {\"app\":\"other\"}: `selector` does not match template `labels`"},
		},
		{
			name: "deployment selector immutable",
			obj: func() runtime.Object {
				d := newDeployment()
				d.ResourceVersion = "2"
				d.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web", "tier": "x"}}
				d.Spec.Template.Labels["tier"] = "x"
				return d
			},
			old: func() runtime.Object {
				d := newDeployment()
				d.ResourceVersion = "1"
				return d
			},
			want: []string{`spec.selector: Invalid value: {"matchLabels":{"app":"web","tier":"x"}}: field is immutable`},
		},
		{
			name: "service clusterIP immutable",
			obj: func() runtime.Object {
				s := newService()
				s.ResourceVersion = "2"
				s.Spec.ClusterIP, s.Spec.ClusterIPs = "10.0.0.2", []string{"10.0.0.2"}
				return s
			},
			old: func() runtime.Object {
				s := newService()
				s.ResourceVersion = "1"
				s.Spec.ClusterIP, s.Spec.ClusterIPs = "10.0.0.1", []string{"10.0.0.1"}
				return s
			},
			want: []string{`spec.clusterIPs[0]: Invalid value: ["10.0.0.2"]: may not change once set`},
		},
		{
			name: "service name must be a DNS-1035 label",
			obj: func() runtime.Object {
				s := newService()
				s.Name = "1web"
				return s
			},
			want: []string{`metadata.name: Invalid value: "1web": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')`},
		},
		{
			name: "service duplicate port",
			obj: func() runtime.Object {
				s := newService()
				s.Spec.Ports = []corev1.ServicePort{
					{Name: "a", Port: 80, Protocol: "TCP", TargetPort: intstr.FromInt32(80)},
					{Name: "b", Port: 80, Protocol: "TCP", TargetPort: intstr.FromInt32(80)},
				}
				return s
			},
			want: []string{`spec.ports[1]: Duplicate value: {"protocol":"TCP","port":80,"targetPort":0}`},
		},
		{
			name: "job template immutable",
			obj: func() runtime.Object {
				j := newJob()
				j.ResourceVersion = "2"
				j.Spec.Template.Spec.Containers[0].Image = "busybox:2"
				return j
			},
			old: func() runtime.Object {
				j := newJob()
				j.ResourceVersion = "1"
				return j
			},
			want: []string{"spec.template: Invalid value: "},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var old runtime.Object
			if tt.old != nil {
				old = tt.old()
			}
			got := errStrings(t, tt.obj(), old)
			// Errors of map entries (labels, annotations) come in the map's
			// random order, upstream's as well: compare them as sets.
			want := slices.Clone(tt.want)
			slices.Sort(got)
			slices.Sort(want)
			tt.want = want
			if len(got) != len(tt.want) {
				t.Fatalf("got %d errors %q, want %d %q", len(got), got, len(tt.want), tt.want)
			}
			for i := range got {
				if strings.HasSuffix(tt.want[i], ": ") {
					if !strings.HasPrefix(got[i], tt.want[i]) || !strings.HasSuffix(got[i], "field is immutable") {
						t.Errorf("error %d = %q, want prefix %q and immutable suffix", i, got[i], tt.want[i])
					}
					continue
				}
				if got[i] != tt.want[i] {
					t.Errorf("error %d:\n got %q\nwant %q", i, got[i], tt.want[i])
				}
			}
		})
	}
}
