package deployment

import (
	"context"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/wasmkube/wasmkube/internal/simnode"
)

func setImage(t *testing.T, cs kubernetes.Interface, name, image string) {
	t.Helper()
	patch := `{"spec":{"template":{"spec":{"containers":[{"name":"nginx","image":"` + image + `"}]}}}}`
	if _, err := cs.AppsV1().Deployments("default").Patch(context.Background(), name, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
}

func setPaused(t *testing.T, cs kubernetes.Interface, name string, paused bool) {
	t.Helper()
	patch := `{"spec":{"paused":false}}`
	if paused {
		patch = `{"spec":{"paused":true}}`
	}
	if _, err := cs.AppsV1().Deployments("default").Patch(context.Background(), name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestRecreatePauseAndResume(t *testing.T) {
	cs := startCluster(t, simnode.Options{}, workloadControllers())
	ctx := context.Background()
	d := loadExample(t)
	d.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}
	if _, err := cs.AppsV1().Deployments("default").Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cs.AppsV1().Deployments("default").Delete(context.Background(), d.Name, metav1.DeleteOptions{})
	})
	waitRolledOut(t, cs, d.Name)

	// Paused: a template change makes no new ReplicaSet.
	setPaused(t, cs, d.Name, true)
	setImage(t, cs, d.Name, "nginx:1.27")
	eventually(t, 10*time.Second, "paused condition", func(ctx context.Context) (bool, error) {
		got, err := cs.AppsV1().Deployments("default").Get(ctx, d.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		c := getCondition(&got.Status, appsv1.DeploymentProgressing)
		return c != nil && c.Reason == "DeploymentPaused" && c.Status == corev1.ConditionUnknown && got.Status.ObservedGeneration == got.Generation, nil
	})
	rss, err := replicaSets(ctx, cs, d.Name)
	if err != nil {
		t.Fatal(err)
	}
	if len(rss) != 1 {
		t.Errorf("%d replicasets while paused, want 1", len(rss))
	}

	// Resumed: Recreate takes the old pods down, then brings the new up.
	setPaused(t, cs, d.Name, false)
	waitRolledOut(t, cs, d.Name)
	eventually(t, 10*time.Second, "recreated at revision 2", func(ctx context.Context) (bool, error) {
		rss, err := replicaSets(ctx, cs, d.Name)
		if err != nil {
			return false, err
		}
		return len(rss) == 2 && rss["2"] != nil && *rss["2"].Spec.Replicas == 2 && *rss["1"].Spec.Replicas == 0, nil
	})
	events, err := cs.CoreV1().Events("default").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, e := range events.Items {
		if e.InvolvedObject.Name == d.Name && e.Reason == "ScalingReplicaSet" {
			order = append(order, e.Message)
		}
	}
	// Recreate: the old set reaches 0 before the new one is scaled up.
	joined := strings.Join(order, "\n")
	down := strings.Index(joined, "Scaled down replica set")
	up := strings.LastIndex(joined, "Scaled up replica set")
	if down < 0 || up < 0 || down > up {
		t.Errorf("scaling events out of order for Recreate:\n%s", joined)
	}
}

func TestProgressDeadlineExceeded(t *testing.T) {
	// Pods never become ready within the test.
	cs := startCluster(t, simnode.Options{ReadyDelay: time.Hour}, workloadControllers())
	ctx := context.Background()
	d := loadExample(t)
	d.Name = "stuck"
	d.Spec.ProgressDeadlineSeconds = ptrTo[int32](2)
	if _, err := cs.AppsV1().Deployments("default").Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cs.AppsV1().Deployments("default").Delete(context.Background(), d.Name, metav1.DeleteOptions{})
	})
	eventually(t, 20*time.Second, "progress deadline exceeded", func(ctx context.Context) (bool, error) {
		got, err := cs.AppsV1().Deployments("default").Get(ctx, d.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		c := getCondition(&got.Status, appsv1.DeploymentProgressing)
		return c != nil && c.Status == corev1.ConditionFalse && c.Reason == "ProgressDeadlineExceeded" &&
			strings.HasSuffix(c.Message, "has timed out progressing."), nil
	})
	_, _, err := rolloutStatus(ctx, cs, d.Name)
	if err == nil || !strings.Contains(err.Error(), "exceeded its progress deadline") {
		t.Errorf("rollout status error = %v, want a progress deadline error", err)
	}
	got, err := cs.AppsV1().Deployments("default").Get(ctx, d.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if c := getCondition(&got.Status, appsv1.DeploymentAvailable); c == nil || c.Status != corev1.ConditionFalse || c.Reason != "MinimumReplicasUnavailable" {
		t.Errorf("Available condition = %+v", c)
	}
	if got.Status.UnavailableReplicas != 2 || got.Status.ReadyReplicas != 0 {
		t.Errorf("status = %+v", got.Status)
	}
}
