package validation

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/wasmkube/wasmkube/control/defaults"
)

func TestValidObjectsHaveNoErrors(t *testing.T) {
	objs := map[string]runtime.Object{
		"pod":        newPod("p"),
		"deployment": newDeployment(),
		"service":    newService(),
		"job":        newJob(),
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a"}}
	defaults.Apply(ns)
	objs["namespace"] = ns
	ss := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "default"},
		Spec: appsv1.StatefulSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "db"}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "db", Image: "postgres:16",
					VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}}}},
			},
			VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{
				ObjectMeta: metav1.ObjectMeta{Name: "data"},
				Spec: corev1.PersistentVolumeClaimSpec{
					AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
					Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resourceMust("1Gi")}},
				},
			}},
		},
	}
	defaults.Apply(ss)
	objs["statefulset"] = ss
	ds := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: "agent", Namespace: "kube-system"},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "agent"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "agent"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "a", Image: "agent"}}},
			},
		},
	}
	defaults.Apply(ds)
	objs["daemonset"] = ds
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s", Namespace: "default"}, Data: map[string][]byte{"k": []byte("v")}}
	defaults.Apply(sec)
	objs["secret"] = sec
	for name, obj := range objs {
		if errs := Validate(obj); len(errs) != 0 {
			t.Errorf("%s: unexpected errors: %v", name, errs.ToAggregate())
		}
	}
}

func TestPodUpdateRules(t *testing.T) {
	old := newPod("p")
	old.ResourceVersion = "1"

	// Image changes are allowed.
	upd := old.DeepCopy()
	upd.Spec.Containers[0].Image = "nginx:1.28"
	if errs := ValidateUpdate(upd, old); len(errs) != 0 {
		t.Fatalf("image update rejected: %v", errs.ToAggregate())
	}

	// Anything else is forbidden with upstream's message.
	upd = old.DeepCopy()
	upd.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 80, Protocol: corev1.ProtocolTCP}}
	errs := ValidateUpdate(upd, old)
	if len(errs) != 1 {
		t.Fatalf("want 1 error, got %v", errs.ToAggregate())
	}
	const prefix = "spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)\n"
	if got := errs[0].Error(); !strings.HasPrefix(got, prefix) {
		t.Errorf("got %q, want prefix %q", got, prefix)
	}

	// Adding a container is reported as such.
	upd = old.DeepCopy()
	upd.Spec.Containers = append(upd.Spec.Containers, corev1.Container{Name: "d", Image: "x", ImagePullPolicy: "Always", TerminationMessagePolicy: "File"})
	errs = ValidateUpdate(upd, old)
	if len(errs) == 0 || errs[len(errs)-1].Error() != "spec.containers: Forbidden: pod updates may not add or remove containers" {
		t.Errorf("got %v", errs.ToAggregate())
	}

	// A missing resourceVersion is an error on every update.
	upd = old.DeepCopy()
	upd.ResourceVersion = ""
	errs = ValidateUpdate(upd, old)
	if len(errs) != 1 || errs[0].Error() != `metadata.resourceVersion: Invalid value: "": must be specified for an update` {
		t.Errorf("got %v", errs.ToAggregate())
	}
}

func TestAggregateRendering(t *testing.T) {
	p := newPod("p")
	p.Spec.Containers[0].Image = ""
	p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "x", MountPath: "/x"}}
	got := Validate(p).ToAggregate().Error()
	want := `[spec.containers[0].image: Required value, spec.containers[0].volumeMounts[0].name: Not found: "x"]`
	if got != want {
		t.Errorf("got %s\nwant %s", got, want)
	}
}

func TestAnnotationsTooLong(t *testing.T) {
	p := newPod("p")
	p.Annotations = map[string]string{"a": strings.Repeat("x", 256*1024)}
	errs := Validate(p)
	if len(errs) != 1 || errs[0].Error() != "metadata.annotations: Too long: may not be more than 262144 bytes" {
		t.Errorf("got %v", errs.ToAggregate())
	}
}

func TestUnknownTypeIsIgnored(t *testing.T) {
	if errs := Validate(&metav1.Status{}); errs != nil {
		t.Errorf("got %v", errs)
	}
	if errs := ValidateUpdate(&metav1.Status{}, &metav1.Status{}); errs != nil {
		t.Errorf("got %v", errs)
	}
}
