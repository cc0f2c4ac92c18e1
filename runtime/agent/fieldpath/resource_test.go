package fieldpath

import (
	"maps"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

func q(s string) resource.Quantity { return resource.MustParse(s) }

func TestResourceValue(t *testing.T) {
	app := &corev1.Container{Name: "app", Resources: corev1.ResourceRequirements{
		Limits: corev1.ResourceList{"cpu": q("500m"), "memory": q("128Mi"), "ephemeral-storage": q("0"),
			"hugepages-2Mi": q("4Mi")},
		Requests: corev1.ResourceList{"cpu": q("250m"), "memory": q("64Mi"), "ephemeral-storage": q("1Gi")},
	}}
	bare := &corev1.Container{Name: "bare"}
	alloc := corev1.ResourceList{"cpu": q("2"), "memory": q("4Gi"), "ephemeral-storage": q("10Gi"), "hugepages-2Mi": q("1Gi")}
	podLevel := corev1.ResourceList{"cpu": q("1500m"), "memory": q("0")}
	tests := []struct {
		name     string
		c        *corev1.Container
		res      string
		divisor  string
		defaults []corev1.ResourceList
		want     string // "error: " and the message when it should fail
	}{
		{name: "cpu rounds up to whole cores", c: app, res: "limits.cpu", want: "1"},
		{name: "cpu in millicores", c: app, res: "limits.cpu", divisor: "1m", want: "500"},
		{name: "divisor 0 means 1", c: app, res: "requests.cpu", divisor: "0", want: "1"},
		{name: "memory in bytes", c: app, res: "limits.memory", want: "134217728"},
		{name: "memory in M rounds up", c: app, res: "limits.memory", divisor: "1M", want: "135"},
		{name: "request in Ki", c: app, res: "requests.memory", divisor: "1Ki", want: "65536"},
		{name: "hugepages limit", c: app, res: "limits.hugepages-2Mi", divisor: "1Mi", want: "4"},
		{name: "set limit wins over defaults", c: app, res: "limits.cpu", divisor: "1m",
			defaults: []corev1.ResourceList{alloc}, want: "500"},
		{name: "zero limit is defaulted", c: app, res: "limits.ephemeral-storage", divisor: "1Gi",
			defaults: []corev1.ResourceList{alloc}, want: "10"},
		{name: "unset limit without defaults", c: bare, res: "limits.memory", want: "0"},
		{name: "unset limit from defaults", c: bare, res: "limits.memory", divisor: "1Mi",
			defaults: []corev1.ResourceList{alloc}, want: "4096"},
		{name: "first default wins", c: bare, res: "limits.cpu", divisor: "1m",
			defaults: []corev1.ResourceList{podLevel, alloc}, want: "1500"},
		{name: "zero default is passed over", c: bare, res: "limits.memory", divisor: "1Gi",
			defaults: []corev1.ResourceList{podLevel, alloc}, want: "4"},
		{name: "missing default is passed over", c: bare, res: "limits.ephemeral-storage", divisor: "1Gi",
			defaults: []corev1.ResourceList{podLevel, alloc}, want: "10"},
		{name: "hugepages are not defaulted", c: bare, res: "limits.hugepages-2Mi",
			defaults: []corev1.ResourceList{alloc}, want: "0"},
		{name: "requests are not defaulted", c: bare, res: "requests.cpu",
			defaults: []corev1.ResourceList{alloc}, want: "0"},
		{name: "extended resource", c: app, res: "limits.example.com/gpu",
			want: "error: unsupported container resource : limits.example.com/gpu"},
		{name: "bad kind", c: app, res: "used.cpu", want: "error: unsupported container resource : used.cpu"},
		{name: "no kind", c: app, res: "cpu", want: "error: unsupported container resource : cpu"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := &corev1.ResourceFieldSelector{Resource: tt.res}
			if tt.divisor != "" {
				fs.Divisor = q(tt.divisor)
			}
			before := tt.c.DeepCopy()
			got, err := ResourceValue(fs, tt.c, tt.defaults...)
			if err != nil {
				got = "error: " + err.Error()
			}
			if got != tt.want {
				t.Errorf("ResourceValue(%s) = %q, want %q", tt.res, got, tt.want)
			}
			// The container belongs to the caller's pod: defaulting must
			// not write the stand-ins into it.
			if !maps.EqualFunc(tt.c.Resources.Limits, before.Resources.Limits, resource.Quantity.Equal) {
				t.Errorf("limits changed to %v", tt.c.Resources.Limits)
			}
		})
	}
}

func TestFindContainer(t *testing.T) {
	pod := &corev1.Pod{Spec: corev1.PodSpec{
		Containers:     []corev1.Container{{Name: "app"}, {Name: "both", Image: "app"}},
		InitContainers: []corev1.Container{{Name: "init"}, {Name: "both", Image: "init"}},
	}}
	tests := []struct {
		name, image string
		init        bool
		err         string
	}{
		{name: "app"},
		{name: "init", init: true},
		{name: "both", image: "app"},
		{name: "nope", err: "container nope not found"},
		{name: "", err: "container  not found"},
	}
	for _, tt := range tests {
		c, init, err := FindContainer(pod, tt.name)
		switch {
		case tt.err != "":
			if err == nil || err.Error() != tt.err || c != nil {
				t.Errorf("FindContainer(%q) = %v, %v; want error %q", tt.name, c, err, tt.err)
			}
		case err != nil:
			t.Errorf("FindContainer(%q): %v", tt.name, err)
		case c.Name != tt.name || c.Image != tt.image || init != tt.init:
			t.Errorf("FindContainer(%q) = %q (image %q), init %v; want image %q, init %v",
				tt.name, c.Name, c.Image, init, tt.image, tt.init)
		}
	}
	// The container returned is the pod's own, not a copy.
	if c, _, _ := FindContainer(pod, "init"); c != &pod.Spec.InitContainers[0] {
		t.Error("FindContainer returned a copy")
	}
}

func TestPodLimits(t *testing.T) {
	tests := []struct {
		name      string
		resources *corev1.ResourceRequirements
		want      corev1.ResourceList
	}{
		{name: "no pod-level resources", want: corev1.ResourceList{}},
		{
			name: "cpu and memory only",
			resources: &corev1.ResourceRequirements{Limits: corev1.ResourceList{
				"cpu": q("1500m"), "memory": q("1Gi"), "ephemeral-storage": q("5Gi")}},
			want: corev1.ResourceList{"cpu": q("1500m"), "memory": q("1Gi")},
		},
		{
			name: "zero limits are left out",
			resources: &corev1.ResourceRequirements{Limits: corev1.ResourceList{"cpu": q("0"), "memory": q("1Gi")},
				Requests: corev1.ResourceList{"cpu": q("1")}},
			want: corev1.ResourceList{"memory": q("1Gi")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := &corev1.Pod{Spec: corev1.PodSpec{Resources: tt.resources}}
			got := PodLimits(pod)
			if !maps.EqualFunc(got, tt.want, resource.Quantity.Equal) {
				t.Fatalf("PodLimits = %v, want %v", got, tt.want)
			}
			// The caller may change the list without changing the pod.
			got["cpu"] = q("7")
			if tt.resources != nil {
				if l := tt.resources.Limits["cpu"]; l.Equal(q("7")) {
					t.Error("PodLimits shares its list with the pod")
				}
			}
		})
	}
}

func TestCeilRatio(t *testing.T) {
	tests := []struct{ q, d, want string }{
		{"1", "1", "1"},
		{"1m", "1", "1"},
		{"1001m", "1", "2"},
		{"2", "1m", "2000"},
		{"1Gi", "1Gi", "1"},
		{"1Gi", "1M", "1074"},
		{"1", "1Ki", "1"},
		{"1n", "1E", "1"},
		{"9223372036854775807", "1", "9223372036854775807"},
		{"9223372036854775808", "1", "9223372036854775807"},
		{"1E", "1n", "9223372036854775807"},
		{"1e100000", "1", "9223372036854775807"},
		{"0", "1", "0"},
		{"-1", "1", "0"},
		{"1", "-1", "0"},
	}
	for _, tt := range tests {
		a, b := q(tt.q), q(tt.d)
		if got := ceilRatio(&a, &b); got != tt.want {
			t.Errorf("ceilRatio(%s, %s) = %s, want %s", tt.q, tt.d, got, tt.want)
		}
	}
}
