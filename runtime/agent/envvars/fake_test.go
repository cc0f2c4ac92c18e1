package envvars

import (
	"context"
	"errors"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// fakeSources serves objects from maps keyed "namespace/name" (Services by
// namespace) and counts the fetches.
type fakeSources struct {
	configMaps map[string]*corev1.ConfigMap
	secrets    map[string]*corev1.Secret
	services   map[string][]*corev1.Service
	err        error // returned by every call when set
	fetches    map[string]int
}

func (f *fakeSources) count(key string) {
	if f.fetches == nil {
		f.fetches = map[string]int{}
	}
	f.fetches[key]++
}

func (f *fakeSources) ConfigMap(_ context.Context, ns, name string) (*corev1.ConfigMap, error) {
	return fakeGet(f, "configmaps", f.configMaps, ns, name)
}

func (f *fakeSources) Secret(_ context.Context, ns, name string) (*corev1.Secret, error) {
	return fakeGet(f, "secrets", f.secrets, ns, name)
}

func fakeGet[T any](f *fakeSources, resource string, m map[string]*T, ns, name string) (*T, error) {
	f.count(resource + "/" + ns + "/" + name)
	if f.err != nil {
		return nil, f.err
	}
	if obj, ok := m[ns+"/"+name]; ok {
		return obj, nil
	}
	return nil, apierrors.NewNotFound(schema.GroupResource{Resource: resource}, name)
}

func (f *fakeSources) Services(_ context.Context, ns string) ([]*corev1.Service, error) {
	f.count("services/" + ns)
	if f.err != nil {
		return nil, f.err
	}
	return f.services[ns], nil
}

func configMap(ns, name string, data map[string]string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Data: data}
}

func secret(ns, name string, data map[string]string) *corev1.Secret {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Data: map[string][]byte{}}
	for k, v := range data {
		s.Data[k] = []byte(v)
	}
	return s
}

func service(ns, name, ip string, ports ...corev1.ServicePort) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       corev1.ServiceSpec{ClusterIP: ip, Ports: ports},
	}
}

func testPod(containers ...corev1.Container) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web-0", UID: "uid-1"},
		Spec:       corev1.PodSpec{Containers: containers},
	}
}

func ptr[T any](v T) *T { return &v }

// resolveOK resolves the first container of pod and fails the test on an
// error.
func resolveOK(t *testing.T, src Sources, pod *corev1.Pod, opts Options) ([]string, []SkippedKeys) {
	t.Helper()
	env, skipped, err := Resolve(context.Background(), src, pod, &pod.Spec.Containers[0], opts)
	if err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	return env, skipped
}

// resolveErr resolves the first container of pod and returns its error,
// failing the test when there is none.
func resolveErr(t *testing.T, src Sources, pod *corev1.Pod, opts Options) error {
	t.Helper()
	env, _, err := Resolve(context.Background(), src, pod, &pod.Spec.Containers[0], opts)
	if err == nil {
		t.Fatalf("Resolve succeeded with %q, want an error", env)
	}
	return err
}

var errBoom = errors.New("boom")
