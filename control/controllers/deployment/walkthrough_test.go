package deployment

import (
	"context"
	"regexp"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/wasmkube/wasmkube/control/controllers/framework"
	"github.com/wasmkube/wasmkube/control/controllers/garbagecollector"
	"github.com/wasmkube/wasmkube/control/controllers/replicaset"
	"github.com/wasmkube/wasmkube/internal/simnode"
)

func runningNginx(ctx context.Context, cs kubernetes.Interface) ([]corev1.Pod, error) {
	list, err := cs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=nginx"})
	if err != nil {
		return nil, err
	}
	var out []corev1.Pod
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning {
			out = append(out, p)
		}
	}
	return out, nil
}

// TestSeedWalkthrough is the project's first scenario: a Deployment's pods
// appear and run, a deleted pod is replaced, deleting the Deployment takes
// its ReplicaSet and pods along, and a standalone pod stays deleted.
func TestSeedWalkthrough(t *testing.T) {
	cs := startClusterWith(t, simnode.Options{}, func(c *rest.Config) map[string]framework.Starter {
		return map[string]framework.Starter{
			"replicaset": replicaset.Starter(), "deployment": Starter(), "garbagecollector": garbagecollector.Starter(c),
		}
	})
	ctx := context.Background()
	d := loadExample(t)
	if _, err := cs.AppsV1().Deployments("default").Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cs.AppsV1().Deployments("default").Delete(context.Background(), d.Name, metav1.DeleteOptions{})
	})
	name := regexp.MustCompile(`^nginx-test-[a-z0-9]{6,10}-[a-z0-9]{5}$`)
	var pods []corev1.Pod
	eventually(t, 30*time.Second, "two running nginx pods", func(ctx context.Context) (bool, error) {
		var err error
		pods, err = runningNginx(ctx, cs)
		return len(pods) == 2, err
	})
	for _, p := range pods {
		if !name.MatchString(p.Name) {
			t.Errorf("pod name %q does not match %s", p.Name, name)
		}
	}

	victim := pods[0].Name
	if err := cs.CoreV1().Pods("default").Delete(ctx, victim, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "a replacement with a new name", func(ctx context.Context) (bool, error) {
		var err error
		pods, err = runningNginx(ctx, cs)
		if err != nil || len(pods) != 2 {
			return false, err
		}
		for _, p := range pods {
			if p.Name == victim {
				return false, nil
			}
		}
		return true, nil
	})

	// A standalone pod has no controller to bring it back.
	solo := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "standalone"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "nginx", Image: "nginx"}}},
	}
	if _, err := cs.CoreV1().Pods("default").Create(ctx, solo, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "standalone pod running", func(ctx context.Context) (bool, error) {
		p, err := cs.CoreV1().Pods("default").Get(ctx, "standalone", metav1.GetOptions{})
		return err == nil && p.Status.Phase == corev1.PodRunning, err
	})
	if err := cs.CoreV1().Pods("default").Delete(ctx, "standalone", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "standalone pod gone", func(ctx context.Context) (bool, error) {
		_, err := cs.CoreV1().Pods("default").Get(ctx, "standalone", metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	time.Sleep(500 * time.Millisecond)
	if _, err := cs.CoreV1().Pods("default").Get(ctx, "standalone", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("standalone pod came back: %v", err)
	}

	// kubectl delete deployment: background propagation.
	err := cs.AppsV1().Deployments("default").Delete(ctx, "nginx-test", metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationBackground)})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "replicaset and pods collected", func(ctx context.Context) (bool, error) {
		rss, err := cs.AppsV1().ReplicaSets("default").List(ctx, metav1.ListOptions{})
		if err != nil || len(rss.Items) != 0 {
			return false, err
		}
		all, err := cs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=nginx"})
		return err == nil && len(all.Items) == 0, err
	})
}
