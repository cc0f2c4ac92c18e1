package proxy

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/wasmkube/wasmkube/control/controllers/endpointslice"
	"github.com/wasmkube/wasmkube/control/controllers/framework"
	"github.com/wasmkube/wasmkube/internal/simnode"
	"github.com/wasmkube/wasmkube/internal/testcluster"
)

// TestProxyAgainstAPIServer runs the proxy against a real API server whose
// EndpointSlices come from the real EndpointSlice controller and pods from
// a simulated node, and follows a Service through its life.
func TestProxyAgainstAPIServer(t *testing.T) {
	_, cs := testcluster.Start(t)
	testcluster.StartNodes(t, cs, simnode.Options{Bind: true, Nodes: []simnode.NodeSpec{{Name: "n1"}}})
	testcluster.RunControllers(t, cs, map[string]framework.Starter{"endpointslice": endpointslice.Starter()})
	dp := newFakeDatapath()
	p := New(cs, dp, WithNodeName("n1"), WithNodeIPs(netip.MustParseAddr("192.0.2.1")))
	runProxy(t, p)
	ctx := context.Background()

	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web-0", Namespace: "default", Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "hello",
			Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}}}},
	}
	if _, err := cs.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, Selector: map[string]string{"app": "web"},
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}}},
	}
	svc, err := cs.CoreV1().Services("default").Create(ctx, svc, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var podIP string
	testcluster.Eventually(t, 30*time.Second, "pod running with an IP", func(ctx context.Context) (bool, error) {
		p, err := cs.CoreV1().Pods("default").Get(ctx, "web-0", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		podIP = p.Status.PodIP
		return podIP != "", nil
	})
	np := svc.Spec.Ports[0].NodePort
	want := strings.Join([]string{
		fmt.Sprintf("%s:80/TCP socket -> [%s:8080]", svc.Spec.ClusterIP, podIP),
		fmt.Sprintf("127.0.0.1:%d/TCP socket -> [%s:8080] host-only", np, podIP),
		fmt.Sprintf("192.0.2.1:%d/TCP external -> [%s:8080]", np, podIP),
		fmt.Sprintf("192.0.2.1:%d/TCP socket -> [%s:8080] node-addr", np, podIP),
	}, "\n")
	testcluster.Eventually(t, 30*time.Second, "service programmed with its pod", func(context.Context) (bool, error) {
		got := withoutAPIServer(dp.snapshot())
		if got != want {
			return false, fmt.Errorf("maps:\n%s\nwant:\n%s", got, want)
		}
		return true, nil
	})

	if err := cs.CoreV1().Pods("default").Delete(ctx, "web-0", metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
		t.Fatal(err)
	}
	testcluster.Eventually(t, 30*time.Second, "no backends once the pod is gone", func(context.Context) (bool, error) {
		got := withoutAPIServer(dp.snapshot())
		if strings.Contains(got, podIP) || strings.Count(got, "-> []") != 4 {
			return false, fmt.Errorf("maps:\n%s", got)
		}
		return true, nil
	})

	if err := cs.CoreV1().Services("default").Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	testcluster.Eventually(t, 30*time.Second, "frontends removed with the service", func(context.Context) (bool, error) {
		got := withoutAPIServer(dp.snapshot())
		if got != "" {
			return false, fmt.Errorf("maps:\n%s", got)
		}
		return true, nil
	})
}

// withoutAPIServer drops the frontends of the Services the control plane
// creates by itself: default/kubernetes and kube-system/kube-dns.
func withoutAPIServer(maps string) string {
	var keep []string
	for _, l := range strings.Split(maps, "\n") {
		if l != "" && !strings.HasPrefix(l, "10.96.0.1:443/") && !strings.HasPrefix(l, "10.96.0.10:53/") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}
