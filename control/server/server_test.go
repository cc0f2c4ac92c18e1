package server

import (
	"context"
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
)

// startServer runs a real control plane (embedded etcd, HTTPS API) on free
// ports and returns an admin clientset.
func startServer(t *testing.T) (*Server, kubernetes.Interface) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := Start(ctx, Options{DataDir: t.TempDir(), SecurePort: 0})
	if err != nil {
		t.Fatalf("starting server: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	cs, err := kubernetes.NewForConfig(s.LoopbackConfig())
	if err != nil {
		t.Fatal(err)
	}
	return s, cs
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestSystemNamespacesExist(t *testing.T) {
	_, cs := startServer(t)
	ctx := testContext(t)
	for _, name := range systemNamespaces {
		ns, err := cs.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("namespace %s: %v", name, err)
		}
		if ns.Status.Phase != corev1.NamespaceActive {
			t.Errorf("namespace %s phase = %q, want Active", name, ns.Status.Phase)
		}
	}
}

func TestCRUDAcrossKinds(t *testing.T) {
	_, cs := startServer(t)
	ctx := testContext(t)

	cm, err := cs.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "settings-"},
		Data:       map[string]string{"a": "1"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create configmap: %v", err)
	}
	if len(cm.Name) != len("settings-")+5 || cm.UID == "" || cm.CreationTimestamp.IsZero() || cm.ResourceVersion == "" {
		t.Errorf("create did not set system fields: name=%q uid=%q created=%v rv=%q", cm.Name, cm.UID, cm.CreationTimestamp, cm.ResourceVersion)
	}
	cm.Data["b"] = "2"
	updated, err := cs.CoreV1().ConfigMaps("default").Update(ctx, cm, metav1.UpdateOptions{})
	if err != nil {
		t.Fatalf("update configmap: %v", err)
	}
	if updated.ResourceVersion == cm.ResourceVersion || updated.Data["b"] != "2" || updated.UID != cm.UID {
		t.Errorf("update: rv %s -> %s, data %v, uid %s -> %s", cm.ResourceVersion, updated.ResourceVersion, updated.Data, cm.UID, updated.UID)
	}

	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Labels: map[string]string{"app": "web"}},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](2),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "busybox:1.36"}}},
			},
		},
	}
	dep, err = cs.AppsV1().Deployments("default").Create(ctx, dep, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create deployment: %v", err)
	}
	if dep.Generation != 1 {
		t.Errorf("new deployment generation = %d, want 1", dep.Generation)
	}
	dep.Labels["tier"] = "front"
	dep, err = cs.AppsV1().Deployments("default").Update(ctx, dep, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if dep.Generation != 1 {
		t.Errorf("a metadata-only update changed generation to %d", dep.Generation)
	}
	dep.Spec.Replicas = ptr.To[int32](3)
	dep, err = cs.AppsV1().Deployments("default").Update(ctx, dep, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if dep.Generation != 2 {
		t.Errorf("a spec update left generation at %d, want 2", dep.Generation)
	}
	scale, err := cs.AppsV1().Deployments("default").GetScale(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get scale: %v", err)
	}
	if scale.Spec.Replicas != 3 || scale.Status.Selector != "app=web" {
		t.Errorf("scale = %+v", scale)
	}
	scale.Spec.Replicas = 5
	if _, err := cs.AppsV1().Deployments("default").UpdateScale(ctx, "web", scale, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("update scale: %v", err)
	}
	dep, err = cs.AppsV1().Deployments("default").Get(ctx, "web", metav1.GetOptions{})
	if err != nil || *dep.Spec.Replicas != 5 {
		t.Fatalf("after scale: replicas=%v err=%v", dep.Spec.Replicas, err)
	}
	// Status writes go through /status only.
	dep.Status.Replicas = 7
	dep, err = cs.AppsV1().Deployments("default").UpdateStatus(ctx, dep, metav1.UpdateOptions{})
	if err != nil || dep.Status.Replicas != 7 {
		t.Fatalf("update status: %v, replicas %d", err, dep.Status.Replicas)
	}
	dep.Status.Replicas = 1
	dep, err = cs.AppsV1().Deployments("default").Update(ctx, dep, metav1.UpdateOptions{})
	if err != nil || dep.Status.Replicas != 7 {
		t.Fatalf("main update changed status: %v, replicas %d", err, dep.Status.Replicas)
	}

	svc, err := cs.CoreV1().Services("default").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": "web"}, Ports: []corev1.ServicePort{{Port: 80}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create service: %v", err)
	}
	if err := cs.CoreV1().Services("default").Delete(ctx, svc.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete service: %v", err)
	}
	if _, err := cs.CoreV1().Services("default").Get(ctx, svc.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("deleted service still readable: %v", err)
	}
	if _, err := cs.CoreV1().ConfigMaps("nowhere").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "x"}}, metav1.CreateOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("create in a missing namespace: got %v, want NotFound", err)
	}
	if _, err := cs.CoreV1().ConfigMaps("default").Create(ctx, cm, metav1.CreateOptions{}); !apierrors.IsAlreadyExists(err) {
		t.Fatalf("second create: got %v, want AlreadyExists", err)
	}
}

func TestStaleUpdateConflicts(t *testing.T) {
	_, cs := startServer(t)
	ctx := testContext(t)
	cm, err := cs.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "c"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	first := cm.DeepCopy()
	first.Data = map[string]string{"by": "first"}
	if _, err := cs.CoreV1().ConfigMaps("default").Update(ctx, first, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	cm.Data = map[string]string{"by": "second"}
	_, err = cs.CoreV1().ConfigMaps("default").Update(ctx, cm, metav1.UpdateOptions{})
	if !apierrors.IsConflict(err) {
		t.Fatalf("stale update: got %v, want 409 Conflict", err)
	}
	want := `Operation cannot be fulfilled on configmaps "c": the object has been modified; please apply your changes to the latest version and try again`
	if err.Error() != want {
		t.Errorf("conflict message:\n got %s\nwant %s", err, want)
	}
}

func TestSelectors(t *testing.T) {
	_, cs := startServer(t)
	ctx := testContext(t)
	pods := cs.CoreV1().Pods("default")
	mk := func(name, app, node string) {
		t.Helper()
		_, err := pods.Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": app}},
			Spec:       corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
	}
	mk("a", "web", "n1")
	mk("b", "web", "n2")
	mk("c", "db", "n1")
	names := func(opts metav1.ListOptions) string {
		t.Helper()
		list, err := pods.List(ctx, opts)
		if err != nil {
			t.Fatalf("list %+v: %v", opts, err)
		}
		out := ""
		for _, p := range list.Items {
			out += p.Name
		}
		return out
	}
	cases := []struct {
		opts metav1.ListOptions
		want string
	}{
		{metav1.ListOptions{LabelSelector: "app=web"}, "ab"},
		{metav1.ListOptions{LabelSelector: "app in (db, cache)"}, "c"},
		{metav1.ListOptions{LabelSelector: "app notin (web)"}, "c"},
		{metav1.ListOptions{FieldSelector: "spec.nodeName=n1"}, "ac"},
		{metav1.ListOptions{FieldSelector: "spec.nodeName=n1,metadata.name!=a"}, "c"},
		{metav1.ListOptions{FieldSelector: "status.phase=Pending", LabelSelector: "app=web"}, "ab"},
		{metav1.ListOptions{FieldSelector: "metadata.name=b"}, "b"},
	}
	for _, c := range cases {
		if got := names(c.opts); got != c.want {
			t.Errorf("list %+v = %q, want %q", c.opts, got, c.want)
		}
	}
	_, err := pods.List(ctx, metav1.ListOptions{FieldSelector: "spec.bogus=1"})
	if !apierrors.IsBadRequest(err) {
		t.Fatalf("unsupported field label: got %v, want 400", err)
	}
}

func TestRequestsNeedCredentials(t *testing.T) {
	s, _ := startServer(t)
	cfg := rest.AnonymousClientConfig(s.LoopbackConfig())
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, err = cs.CoreV1().Pods("default").List(testContext(t), metav1.ListOptions{})
	if !apierrors.IsUnauthorized(err) {
		t.Fatalf("anonymous list: got %v, want 401", err)
	}
	body, err := cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(testContext(t))
	if err != nil || string(body) != "ok" {
		t.Fatalf("anonymous /readyz = %q, %v; want ok", body, err)
	}
}

func TestPodBindingAndGracefulDelete(t *testing.T) {
	_, cs := startServer(t)
	ctx := testContext(t)
	pods := cs.CoreV1().Pods("default")
	pod, err := pods.Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	bind := &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: "p"}, Target: corev1.ObjectReference{Kind: "Node", Name: "n1"}}
	if err := pods.Bind(ctx, bind, metav1.CreateOptions{}); err != nil {
		t.Fatalf("bind: %v", err)
	}
	bound, err := pods.Get(ctx, "p", metav1.GetOptions{})
	if err != nil || bound.Spec.NodeName != "n1" || len(bound.Status.Conditions) != 1 ||
		bound.Status.Conditions[0].Type != corev1.PodScheduled || bound.Status.Conditions[0].Status != corev1.ConditionTrue {
		t.Fatalf("bound pod: %v, node %q, conditions %+v", err, bound.Spec.NodeName, bound.Status.Conditions)
	}
	if err := pods.Bind(ctx, bind, metav1.CreateOptions{}); !apierrors.IsConflict(err) {
		t.Fatalf("second bind: got %v, want 409", err)
	}
	if err := pods.Delete(ctx, "p", metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: ptr.To(types.UID("other"))}}); !apierrors.IsConflict(err) {
		t.Fatalf("delete with a wrong uid precondition: got %v, want 409", err)
	}
	if err := pods.Delete(ctx, "p", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	got, err := pods.Get(ctx, "p", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("a bound pod must wait for its agent: %v", err)
	}
	if got.DeletionTimestamp == nil || got.DeletionGracePeriodSeconds == nil || *got.DeletionGracePeriodSeconds != 30 || got.UID != pod.UID {
		t.Fatalf("graceful delete marks: ts=%v grace=%v", got.DeletionTimestamp, got.DeletionGracePeriodSeconds)
	}
	if err := pods.Delete(ctx, "p", metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil {
		t.Fatal(err)
	}
	if _, err := pods.Get(ctx, "p", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("after grace 0: %v, want NotFound", err)
	}
}

func TestFinalizersHoldDeletion(t *testing.T) {
	_, cs := startServer(t)
	ctx := testContext(t)
	cms := cs.CoreV1().ConfigMaps("default")
	_, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "f", Finalizers: []string{"example.com/hold"}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := cms.Delete(ctx, "f", metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationForeground)}); err != nil {
		t.Fatal(err)
	}
	cm, err := cms.Get(ctx, "f", metav1.GetOptions{})
	if err != nil || cm.DeletionTimestamp == nil {
		t.Fatalf("finalized object: %v, deletionTimestamp %v", err, cm.DeletionTimestamp)
	}
	if want := []string{"example.com/hold", metav1.FinalizerDeleteDependents}; fmt.Sprint(cm.Finalizers) != fmt.Sprint(want) {
		t.Errorf("finalizers = %v, want %v (foreground propagation recorded)", cm.Finalizers, want)
	}
	cm.Finalizers = nil
	if _, err := cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cms.Get(ctx, "f", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("after the last finalizer: %v, want NotFound", err)
	}
}

func TestNamespaceTerminatesUntilFinalized(t *testing.T) {
	_, cs := startServer(t)
	ctx := testContext(t)
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "gone-soon"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := cs.CoreV1().Namespaces().Delete(ctx, "gone-soon", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	ns, err := cs.CoreV1().Namespaces().Get(ctx, "gone-soon", metav1.GetOptions{})
	if err != nil || ns.Status.Phase != corev1.NamespaceTerminating || ns.DeletionTimestamp == nil {
		t.Fatalf("deleted namespace: %v, phase %q", err, ns.Status.Phase)
	}
	// The namespace check reads the watch cache, as upstream's admission
	// reads its informer: the refusal follows the delete within moments.
	deadline := time.Now().Add(5 * time.Second)
	for i := 0; ; i++ {
		_, err := cs.CoreV1().ConfigMaps("gone-soon").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprint("late", i)}}, metav1.CreateOptions{})
		if apierrors.IsForbidden(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("create in a terminating namespace: got %v, want 403", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	ns.Spec.Finalizers = nil
	if _, err := cs.CoreV1().Namespaces().Finalize(ctx, ns, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("finalize: %v", err)
	}
	if _, err := cs.CoreV1().Namespaces().Get(ctx, "gone-soon", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("finalized namespace: %v, want NotFound", err)
	}
}

// TestSecretStringDataIsMergedIntoData: stringData is write-only, folded
// into data on create and update with its values winning.
func TestSecretStringDataIsMergedIntoData(t *testing.T) {
	_, cs := startServer(t)
	ctx := testContext(t)
	secrets := cs.CoreV1().Secrets("default")
	sec, err := secrets.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "creds"},
		Data:       map[string][]byte{"user": []byte("old"), "keep": []byte("k")},
		StringData: map[string]string{"user": "admin", "password": "s3cret"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"user": "admin", "password": "s3cret", "keep": "k"}
	check := func(what string, s *corev1.Secret) {
		t.Helper()
		if len(s.StringData) != 0 {
			t.Errorf("%s: stringData returned: %v", what, s.StringData)
		}
		if len(s.Data) != len(want) {
			t.Errorf("%s: data %v, want %v", what, s.Data, want)
		}
		for k, v := range want {
			if string(s.Data[k]) != v {
				t.Errorf("%s: data[%s] = %q, want %q", what, k, s.Data[k], v)
			}
		}
	}
	check("create", sec)
	got, err := secrets.Get(ctx, "creds", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	check("get", got)
	got.StringData = map[string]string{"password": "rotated"}
	want["password"] = "rotated"
	updated, err := secrets.Update(ctx, got, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	check("update", updated)
}
