package deployment

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	"k8s.io/kubectl/pkg/polymorphichelpers"

	"github.com/wasmkube/wasmkube/control/controllers/framework"
	"github.com/wasmkube/wasmkube/control/controllers/replicaset"
	"github.com/wasmkube/wasmkube/internal/simnode"
)

func workloadControllers() map[string]framework.Starter {
	return map[string]framework.Starter{"replicaset": replicaset.Starter(), "deployment": Starter()}
}

// loadExample decodes examples/nginx-deploy.yaml, the seed manifest.
func loadExample(t *testing.T) *appsv1.Deployment {
	t.Helper()
	data, err := os.ReadFile("../../../examples/nginx-deploy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	obj, _, err := scheme.Codecs.UniversalDeserializer().Decode(data, nil, nil)
	if err != nil {
		t.Fatalf("decoding example: %v", err)
	}
	d, ok := obj.(*appsv1.Deployment)
	if !ok {
		t.Fatalf("example is a %T, want a Deployment", obj)
	}
	d.Namespace = "default"
	return d
}

// rolloutStatus is what `kubectl rollout status` prints, from kubectl's own
// status viewer.
func rolloutStatus(ctx context.Context, cs kubernetes.Interface, name string) (string, bool, error) {
	d, err := cs.AppsV1().Deployments("default").Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return "", false, err
	}
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(d)
	if err != nil {
		return "", false, err
	}
	viewer, err := polymorphichelpers.StatusViewerFor(appsv1.SchemeGroupVersion.WithKind("Deployment").GroupKind())
	if err != nil {
		return "", false, err
	}
	return viewer.Status(&unstructured.Unstructured{Object: u}, 0)
}

func waitRolledOut(t *testing.T, cs kubernetes.Interface, name string) {
	t.Helper()
	var msg string
	eventually(t, 60*time.Second, "rollout of "+name, func(ctx context.Context) (bool, error) {
		var done bool
		var err error
		msg, done, err = rolloutStatus(ctx, cs, name)
		return done, err
	})
	if want := fmt.Sprintf("deployment %q successfully rolled out\n", name); msg != want {
		t.Errorf("rollout status = %q, want %q", msg, want)
	}
}

func replicaSets(ctx context.Context, cs kubernetes.Interface, name string) (map[string]*appsv1.ReplicaSet, error) {
	list, err := cs.AppsV1().ReplicaSets("default").List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	out := map[string]*appsv1.ReplicaSet{}
	for i := range list.Items {
		rs := &list.Items[i]
		if ref := metav1.GetControllerOf(rs); ref != nil && ref.Name == name {
			out[rs.Annotations[RevisionAnnotation]] = rs
		}
	}
	return out, nil
}

func TestRolloutAndRollback(t *testing.T) {
	cs := startCluster(t, simnode.Options{}, workloadControllers())
	ctx := context.Background()
	d := loadExample(t)
	d.Spec.RevisionHistoryLimit = ptrTo[int32](1)
	if _, err := cs.AppsV1().Deployments("default").Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cs.AppsV1().Deployments("default").Delete(context.Background(), d.Name, metav1.DeleteOptions{})
	})
	waitRolledOut(t, cs, "nginx-test")

	rss, err := replicaSets(ctx, cs, "nginx-test")
	if err != nil {
		t.Fatal(err)
	}
	rs1 := rss["1"]
	if rs1 == nil || len(rss) != 1 {
		t.Fatalf("replicasets by revision = %v, want one at revision 1", rss)
	}
	hash := rs1.Labels[appsv1.DefaultDeploymentUniqueLabelKey]
	if hash == "" || rs1.Name != "nginx-test-"+hash || rs1.Spec.Selector.MatchLabels[appsv1.DefaultDeploymentUniqueLabelKey] != hash ||
		rs1.Spec.Template.Labels[appsv1.DefaultDeploymentUniqueLabelKey] != hash {
		t.Errorf("replicaset %s: labels %v selector %v template labels %v", rs1.Name, rs1.Labels, rs1.Spec.Selector, rs1.Spec.Template.Labels)
	}
	stored, err := cs.AppsV1().Deployments("default").Get(ctx, "nginx-test", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if want := ComputeHash(&stored.Spec.Template, nil); hash != want {
		t.Errorf("pod-template-hash %q, want %q (of the stored, defaulted template)", hash, want)
	}
	if rs1.Annotations[DesiredReplicasAnnotation] != "2" || rs1.Annotations[MaxReplicasAnnotation] != "3" {
		t.Errorf("replica annotations = %v", rs1.Annotations)
	}
	pods, err := cs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=nginx"})
	if err != nil {
		t.Fatal(err)
	}
	namePattern := regexp.MustCompile("^nginx-test-" + hash + "-[a-z0-9]{5}$")
	running := 0
	for _, p := range pods.Items {
		if !namePattern.MatchString(p.Name) {
			t.Errorf("pod name %q does not match %s", p.Name, namePattern)
		}
		if p.Status.Phase == corev1.PodRunning {
			running++
		}
	}
	if running != 2 {
		t.Errorf("%d running pods, want 2", running)
	}
	got, err := cs.AppsV1().Deployments("default").Get(ctx, "nginx-test", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkConditions(t, got, fmt.Sprintf("ReplicaSet %q has successfully progressed.", rs1.Name))
	if got.Annotations[RevisionAnnotation] != "1" {
		t.Errorf("deployment revision = %q, want 1", got.Annotations[RevisionAnnotation])
	}
	eventually(t, 10*time.Second, "scaling event", func(ctx context.Context) (bool, error) {
		return hasEvent(ctx, cs, "nginx-test", fmt.Sprintf("Scaled up replica set %s from 0 to 2", rs1.Name))
	})

	// Change the image: a new ReplicaSet at revision 2 takes over.
	patch := `{"spec":{"template":{"spec":{"containers":[{"name":"nginx","image":"nginx:1.27"}]}}},"metadata":{"annotations":{"kubernetes.io/change-cause":"image 1.27"}}}`
	if _, err := cs.AppsV1().Deployments("default").Patch(ctx, "nginx-test", types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	waitRolledOut(t, cs, "nginx-test")
	var rs2 *appsv1.ReplicaSet
	eventually(t, 10*time.Second, "old replicaset scaled to 0", func(ctx context.Context) (bool, error) {
		rss, err := replicaSets(ctx, cs, "nginx-test")
		if err != nil {
			return false, err
		}
		rs2 = rss["2"]
		old := rss["1"]
		return rs2 != nil && old != nil && *old.Spec.Replicas == 0 && old.Status.Replicas == 0 && *rs2.Spec.Replicas == 2, nil
	})
	if rs2.Spec.Template.Spec.Containers[0].Image != "nginx:1.27" || rs2.Annotations["kubernetes.io/change-cause"] != "image 1.27" {
		t.Errorf("new replicaset template image %q, annotations %v", rs2.Spec.Template.Spec.Containers[0].Image, rs2.Annotations)
	}
	got, err = cs.AppsV1().Deployments("default").Get(ctx, "nginx-test", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Annotations[RevisionAnnotation] != "2" {
		t.Errorf("deployment revision = %q, want 2", got.Annotations[RevisionAnnotation])
	}
	checkConditions(t, got, fmt.Sprintf("ReplicaSet %q has successfully progressed.", rs2.Name))

	// kubectl rollout undo --to-revision=1, through kubectl's own code.
	rb, err := polymorphichelpers.RollbackerFor(appsv1.SchemeGroupVersion.WithKind("Deployment").GroupKind(), cs)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rb.Rollback(got, nil, 1, cmdutil.DryRunNone); err != nil {
		t.Fatalf("rollback: %v", err)
	}
	waitRolledOut(t, cs, "nginx-test")
	eventually(t, 10*time.Second, "revision 1's replicaset back as revision 3", func(ctx context.Context) (bool, error) {
		rss, err := replicaSets(ctx, cs, "nginx-test")
		if err != nil {
			return false, err
		}
		rs3 := rss["3"]
		return rs3 != nil && rs3.UID == rs1.UID && rs3.Annotations[RevisionHistoryAnnotation] == "1" &&
			*rs3.Spec.Replicas == 2 && rss["2"] != nil && *rss["2"].Spec.Replicas == 0, nil
	})
	got, err = cs.AppsV1().Deployments("default").Get(ctx, "nginx-test", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Annotations[RevisionAnnotation] != "3" || got.Spec.Template.Spec.Containers[0].Image != "nginx" {
		t.Errorf("after undo: revision %q image %q", got.Annotations[RevisionAnnotation], got.Spec.Template.Spec.Containers[0].Image)
	}

	// kubectl rollout restart: a template annotation makes revision 4; with
	// revisionHistoryLimit 1 only one old ReplicaSet may remain.
	restart := fmt.Sprintf(`{"spec":{"template":{"metadata":{"annotations":{"kubectl.kubernetes.io/restartedAt":%q}}}}}`, time.Now().Format(time.RFC3339))
	if _, err := cs.AppsV1().Deployments("default").Patch(ctx, "nginx-test", types.StrategicMergePatchType, []byte(restart), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	waitRolledOut(t, cs, "nginx-test")
	eventually(t, 15*time.Second, "history trimmed to the limit", func(ctx context.Context) (bool, error) {
		rss, err := replicaSets(ctx, cs, "nginx-test")
		if err != nil {
			return false, err
		}
		return len(rss) == 2 && rss["4"] != nil && rss["3"] != nil, nil
	})
}

func checkConditions(t *testing.T, d *appsv1.Deployment, progressed string) {
	t.Helper()
	avail, prog := getCondition(&d.Status, appsv1.DeploymentAvailable), getCondition(&d.Status, appsv1.DeploymentProgressing)
	if avail == nil || avail.Status != corev1.ConditionTrue || avail.Reason != "MinimumReplicasAvailable" || avail.Message != "Deployment has minimum availability." {
		t.Errorf("Available condition = %+v", avail)
	}
	if prog == nil || prog.Status != corev1.ConditionTrue || prog.Reason != "NewReplicaSetAvailable" || prog.Message != progressed {
		t.Errorf("Progressing condition = %+v, want message %q", prog, progressed)
	}
	st := d.Status
	if st.Replicas != 2 || st.UpdatedReplicas != 2 || st.ReadyReplicas != 2 || st.AvailableReplicas != 2 ||
		st.UnavailableReplicas != 0 || st.ObservedGeneration != d.Generation {
		t.Errorf("status = %+v", st)
	}
}

func hasEvent(ctx context.Context, cs kubernetes.Interface, name, message string) (bool, error) {
	events, err := cs.CoreV1().Events("default").List(ctx, metav1.ListOptions{})
	if err != nil {
		return false, err
	}
	for _, e := range events.Items {
		if e.InvolvedObject.Name == name && e.Reason == "ScalingReplicaSet" && strings.Contains(e.Message, message) {
			return true, nil
		}
	}
	return false, nil
}

func ptrTo[T any](v T) *T { return &v }
