package namespace

import (
	"context"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/wasmkube/wasmkube/control/controllers/framework"
	"github.com/wasmkube/wasmkube/control/controllers/garbagecollector"
	"github.com/wasmkube/wasmkube/control/controllers/replicaset"
	"github.com/wasmkube/wasmkube/internal/simnode"
	"github.com/wasmkube/wasmkube/internal/testcluster"
)

func startCluster(t *testing.T) kubernetes.Interface {
	t.Helper()
	s, cs := testcluster.Start(t)
	testcluster.StartNodes(t, cs, simnode.Options{Bind: true, Nodes: []simnode.NodeSpec{{Name: "n1"}}})
	testcluster.RunControllers(t, cs, map[string]framework.Starter{
		"replicaset":       replicaset.Starter(),
		"garbagecollector": garbagecollector.Starter(s.LoopbackConfig()),
		"namespace":        Starter(s.LoopbackConfig()),
	})
	return cs
}

func condition(ns *corev1.Namespace, t corev1.NamespaceConditionType) *corev1.NamespaceCondition {
	for i := range ns.Status.Conditions {
		if ns.Status.Conditions[i].Type == t {
			return &ns.Status.Conditions[i]
		}
	}
	return nil
}

func TestNamespaceDeletionRemovesContent(t *testing.T) {
	cs := startCluster(t)
	ctx := context.Background()
	const name = "doomed"
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cs.CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{}) })

	// Content of several kinds: plain objects, a running pod, a ReplicaSet
	// with pods, and a ConfigMap whose finalizer holds the namespace.
	if _, err := cs.CoreV1().ConfigMaps(name).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "settings"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Secrets(name).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "token"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	held := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "held", Finalizers: []string{"example.com/hold"}}}
	if _, err := cs.CoreV1().ConfigMaps(name).Create(ctx, held, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "solo"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "nginx"}}},
	}
	if _, err := cs.CoreV1().Pods(name).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.ReplicaSetSpec{
			Replicas: ptr.To[int32](2),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "nginx"}}},
			},
		},
	}
	if _, err := cs.AppsV1().ReplicaSets(name).Create(ctx, rs, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	testcluster.Eventually(t, 30*time.Second, "three running pods", func(ctx context.Context) (bool, error) {
		pods, err := cs.CoreV1().Pods(name).List(ctx, metav1.ListOptions{FieldSelector: "status.phase=Running"})
		return err == nil && len(pods.Items) == 3, err
	})

	if err := cs.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	// Everything but the held ConfigMap goes; the namespace stays
	// Terminating and says why.
	testcluster.Eventually(t, 30*time.Second, "content removed except the held object", func(ctx context.Context) (bool, error) {
		ns, err := cs.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if ns.Status.Phase != corev1.NamespaceTerminating {
			t.Errorf("phase %q while content remains, want Terminating", ns.Status.Phase)
		}
		remaining := condition(ns, corev1.NamespaceContentRemaining)
		finalizers := condition(ns, corev1.NamespaceFinalizersRemaining)
		if remaining == nil || remaining.Status != corev1.ConditionTrue || finalizers == nil || finalizers.Status != corev1.ConditionTrue {
			return false, nil
		}
		pods, err := cs.CoreV1().Pods(name).List(ctx, metav1.ListOptions{})
		if err != nil || len(pods.Items) != 0 {
			return false, err
		}
		rss, err := cs.AppsV1().ReplicaSets(name).List(ctx, metav1.ListOptions{})
		if err != nil || len(rss.Items) != 0 {
			return false, err
		}
		cms, err := cs.CoreV1().ConfigMaps(name).List(ctx, metav1.ListOptions{})
		return err == nil && len(cms.Items) == 1 && cms.Items[0].Name == "held", err
	})
	ns, err := cs.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if c := condition(ns, corev1.NamespaceContentRemaining); c.Reason != "SomeResourcesRemain" || c.Message != "Some resources are remaining: configmaps has 1 resource instances" {
		t.Errorf("NamespaceContentRemaining = %+v", c)
	}

	// Releasing the last finalizer lets the namespace go.
	patch := []byte(`{"metadata":{"finalizers":null}}`)
	if _, err := cs.CoreV1().ConfigMaps(name).Patch(ctx, "held", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	testcluster.Eventually(t, 30*time.Second, "namespace gone", func(ctx context.Context) (bool, error) {
		_, err := cs.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	for _, list := range []func() (int, error){
		func() (int, error) {
			l, err := cs.CoreV1().ConfigMaps(name).List(ctx, metav1.ListOptions{})
			return len(l.Items), err
		},
		func() (int, error) {
			l, err := cs.CoreV1().Secrets(name).List(ctx, metav1.ListOptions{})
			return len(l.Items), err
		},
		func() (int, error) {
			l, err := cs.CoreV1().Pods(name).List(ctx, metav1.ListOptions{})
			return len(l.Items), err
		},
	} {
		if n, err := list(); err != nil || n != 0 {
			t.Errorf("after the namespace went: %d objects left, err %v", n, err)
		}
	}
}

func TestActiveNamespaceUntouched(t *testing.T) {
	cs := startCluster(t)
	ctx := context.Background()
	if _, err := cs.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "keep"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cs.CoreV1().ConfigMaps("default").Delete(context.Background(), "keep", metav1.DeleteOptions{})
	})
	time.Sleep(time.Second)
	if _, err := cs.CoreV1().ConfigMaps("default").Get(ctx, "keep", metav1.GetOptions{}); err != nil {
		t.Errorf("content of an active namespace: %v", err)
	}
	ns, err := cs.CoreV1().Namespaces().Get(ctx, "default", metav1.GetOptions{})
	if err != nil || ns.Status.Phase != corev1.NamespaceActive || len(ns.Status.Conditions) != 0 {
		t.Errorf("default namespace = %+v, %v", ns.Status, err)
	}
}
