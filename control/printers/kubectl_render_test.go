package printers

import (
	"bytes"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	cliprinters "k8s.io/cli-runtime/pkg/printers"
)

// render prints a table with kubectl's own table printer, so the assertions
// below are on the exact text a user sees from `kubectl get`.
func render(t *testing.T, obj runtime.Object, wide bool) string {
	t.Helper()
	tbl := mustTable(t, obj)
	// kubectl needs row objects only for extra columns such as NAMESPACE or
	// LABELS; fill them the way the API server does for completeness.
	items := []runtime.Object{obj}
	if l, ok := obj.(*corev1.PodList); ok {
		items = items[:0]
		for i := range l.Items {
			items = append(items, &l.Items[i])
		}
	}
	for i := range tbl.Rows {
		tbl.Rows[i].Object = runtime.RawExtension{Object: items[i]}
	}
	var buf bytes.Buffer
	if err := cliprinters.NewTablePrinter(cliprinters.PrintOptions{Wide: wide}).PrintObj(tbl, &buf); err != nil {
		t.Fatalf("kubectl table printer: %v", err)
	}
	return buf.String()
}

func TestKubectlRendering(t *testing.T) {
	running := basePod("web-7d9f")
	running.Spec.NodeName = "node-1"
	running.Status.PodIPs = []corev1.PodIP{{IP: "10.244.0.5"}}
	running.Status.ContainerStatuses = []corev1.ContainerStatus{{
		Name: "app", Ready: true, RestartCount: 3, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}},
		LastTerminationState: lastTerminated(5 * time.Minute),
	}}
	pending := basePod("db-0")
	pending.CreationTimestamp = ago(5 * time.Second)
	pending.Status.Phase = corev1.PodPending
	list := &corev1.PodList{Items: []corev1.Pod{running, pending}}

	want := "" +
		"NAME       READY   STATUS    RESTARTS     AGE\n" +
		"web-7d9f   1/1     Running   3 (5m ago)   10m\n" +
		"db-0       0/1     Pending   0            5s\n"
	if got := render(t, list, false); got != want {
		t.Errorf("kubectl get pods:\n%s\nwant:\n%s", got, want)
	}

	wantWide := "" +
		"NAME       READY   STATUS    RESTARTS     AGE   IP           NODE     NOMINATED NODE   READINESS GATES\n" +
		"web-7d9f   1/1     Running   3 (5m ago)   10m   10.244.0.5   node-1   <none>           <none>\n" +
		"db-0       0/1     Pending   0            5s    <none>       <none>   <none>           <none>\n"
	if got := render(t, list, true); got != wantWide {
		t.Errorf("kubectl get pods -o wide:\n%s\nwant:\n%s", got, wantWide)
	}

	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", CreationTimestamp: ago(2 * time.Minute)},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, ClusterIPs: []string{"10.96.12.7"},
			Ports: []corev1.ServicePort{{Port: 80, NodePort: 30007, Protocol: corev1.ProtocolTCP}}},
	}
	wantSvc := "" +
		"NAME   TYPE       CLUSTER-IP   EXTERNAL-IP   PORT(S)        AGE\n" +
		"web    NodePort   10.96.12.7   <none>        80:30007/TCP   2m\n"
	if got := render(t, svc, false); got != wantSvc {
		t.Errorf("kubectl get svc:\n%s\nwant:\n%s", got, wantSvc)
	}
}
