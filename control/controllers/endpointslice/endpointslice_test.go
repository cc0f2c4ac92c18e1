package endpointslice_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/wasmkube/wasmkube/control/controllers/endpoints"
	"github.com/wasmkube/wasmkube/control/controllers/endpointslice"
	"github.com/wasmkube/wasmkube/control/controllers/framework"
	"github.com/wasmkube/wasmkube/internal/simnode"
	"github.com/wasmkube/wasmkube/internal/testcluster"
)

// startCluster runs a real API server, three simulated nodes (n1 in zone
// z1) and the EndpointSlice and Endpoints controllers.
func startCluster(t *testing.T) (kubernetes.Interface, *simnode.Cluster) {
	t.Helper()
	_, cs := testcluster.Start(t)
	nodes := testcluster.StartNodes(t, cs, simnode.Options{Bind: true, Nodes: []simnode.NodeSpec{
		{Name: "n1", Labels: map[string]string{corev1.LabelTopologyZone: "z1"}}, {Name: "n2"}, {Name: "n3"},
	}})
	testcluster.RunControllers(t, cs, map[string]framework.Starter{
		"endpointslice": endpointslice.Starter(),
		"endpoints":     endpoints.Starter(),
	})
	return cs, nodes
}

func eventually(t *testing.T, what string, cond func(ctx context.Context) (bool, error)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var last error
	err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		// cond's error only explains a false; it never ends the wait.
		ok, err := cond(ctx)
		last = err
		return ok, nil
	})
	if err != nil {
		t.Fatalf("%s: not reached: %v (last: %v)", what, err, last)
	}
}

func webPod(name, node string, port int32) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{
			NodeSelector: map[string]string{corev1.LabelHostname: node},
			Containers: []corev1.Container{{Name: "c", Image: "nginx", Ports: []corev1.ContainerPort{
				{Name: "http", ContainerPort: port, Protocol: corev1.ProtocolTCP},
			}}},
		},
	}
}

// endpointView is one endpoint reduced to what the test asserts.
type endpointView struct {
	pod, ip, node, zone, hostname string
	ready, serving, terminating   bool
	port                          int32
}

func (v endpointView) String() string {
	return fmt.Sprintf("%s(%s node=%s zone=%s host=%s ready=%v serving=%v term=%v port=%d)",
		v.pod, v.ip, v.node, v.zone, v.hostname, v.ready, v.serving, v.terminating, v.port)
}

// sliceView lists the endpoints of a Service's slices by pod name, and
// checks the slice metadata every slice must carry.
func sliceView(ctx context.Context, cs kubernetes.Interface, svc *corev1.Service) (map[string]endpointView, int, error) {
	list, err := cs.DiscoveryV1().EndpointSlices(svc.Namespace).List(ctx, metav1.ListOptions{
		LabelSelector: labels.Set{discoveryv1.LabelServiceName: svc.Name}.String(),
	})
	if err != nil {
		return nil, 0, err
	}
	out := map[string]endpointView{}
	for _, s := range list.Items {
		if s.Labels[discoveryv1.LabelManagedBy] != "endpointslice-controller.k8s.io" {
			return nil, 0, fmt.Errorf("slice %s managed-by = %q", s.Name, s.Labels[discoveryv1.LabelManagedBy])
		}
		if s.AddressType != discoveryv1.AddressTypeIPv4 {
			return nil, 0, fmt.Errorf("slice %s addressType = %s", s.Name, s.AddressType)
		}
		ref := metav1.GetControllerOf(&s)
		if ref == nil || ref.Kind != "Service" || ref.Name != svc.Name || ref.UID != svc.UID {
			return nil, 0, fmt.Errorf("slice %s controller ref = %+v", s.Name, ref)
		}
		if len(s.Endpoints) > endpointslice.MaxEndpointsPerSlice {
			return nil, 0, fmt.Errorf("slice %s has %d endpoints", s.Name, len(s.Endpoints))
		}
		for _, ep := range s.Endpoints {
			if ep.TargetRef == nil || ep.TargetRef.Kind != "Pod" || len(ep.Addresses) != 1 || len(s.Ports) != 1 {
				return nil, 0, fmt.Errorf("slice %s endpoint %+v ports %+v", s.Name, ep, s.Ports)
			}
			out[ep.TargetRef.Name] = endpointView{
				pod: ep.TargetRef.Name, ip: ep.Addresses[0], node: ptr.Deref(ep.NodeName, ""),
				zone: ptr.Deref(ep.Zone, ""), hostname: ptr.Deref(ep.Hostname, ""),
				ready: ptr.Deref(ep.Conditions.Ready, false), serving: ptr.Deref(ep.Conditions.Serving, false),
				terminating: ptr.Deref(ep.Conditions.Terminating, false), port: ptr.Deref(s.Ports[0].Port, 0),
			}
		}
	}
	return out, len(list.Items), nil
}

// endpointsView renders the legacy Endpoints object as sorted
// "ready|notready pod ip:port" lines.
func endpointsView(ctx context.Context, cs kubernetes.Interface, name string) (string, error) {
	ep, err := cs.CoreV1().Endpoints("default").Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return "", err
	}
	var lines []string
	for _, ss := range ep.Subsets {
		if len(ss.Ports) != 1 {
			return "", fmt.Errorf("subset ports %+v", ss.Ports)
		}
		for _, a := range ss.Addresses {
			lines = append(lines, fmt.Sprintf("ready %s %s:%d", a.TargetRef.Name, a.IP, ss.Ports[0].Port))
		}
		for _, a := range ss.NotReadyAddresses {
			lines = append(lines, fmt.Sprintf("notready %s %s:%d", a.TargetRef.Name, a.IP, ss.Ports[0].Port))
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, ","), nil
}

func TestServiceEndpoints(t *testing.T) {
	cs, nodes := startCluster(t)
	ctx := context.Background()
	svc, err := cs.CoreV1().Services("default").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Labels: map[string]string{"tier": "front"}},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "web"},
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cs.CoreV1().Services("default").Delete(context.Background(), "web", metav1.DeleteOptions{})
	})

	// An empty Service still gets its placeholder slice.
	eventually(t, "placeholder slice", func(ctx context.Context) (bool, error) {
		eps, n, err := sliceView(ctx, cs, svc)
		return err == nil && n == 1 && len(eps) == 0, err
	})

	p0 := webPod("web-0", "n3", 8080)
	p0.Spec.Hostname, p0.Spec.Subdomain = "web-0", "web"
	for _, p := range []*corev1.Pod{p0, webPod("web-1", "n1", 8080), webPod("web-2", "n2", 8080)} {
		if _, err := cs.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, n := range []string{"web-0", "web-1", "web-2", "web-3"} {
			_ = cs.CoreV1().Pods("default").Delete(context.Background(), n, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
		}
	})

	var view map[string]endpointView
	eventually(t, "three ready endpoints in one slice", func(ctx context.Context) (bool, error) {
		eps, n, err := sliceView(ctx, cs, svc)
		if err != nil || n != 1 || len(eps) != 3 {
			return false, fmt.Errorf("%d slices, endpoints %v: %w", n, eps, err)
		}
		for _, e := range eps {
			if !e.ready || !e.serving || e.terminating || e.port != 8080 || e.ip == "" {
				return false, fmt.Errorf("endpoint %v", e)
			}
		}
		view = eps
		return true, nil
	})
	if v := view["web-1"]; v.node != "n1" || v.zone != "z1" {
		t.Errorf("web-1 endpoint node=%q zone=%q, want n1/z1", v.node, v.zone)
	}
	if v := view["web-0"]; v.hostname != "web-0" || v.zone != "" {
		t.Errorf("web-0 endpoint hostname=%q zone=%q, want web-0 and no zone", v.hostname, v.zone)
	}
	if v := view["web-2"]; v.hostname != "" {
		t.Errorf("web-2 has hostname %q without a subdomain", v.hostname)
	}
	want := fmt.Sprintf("ready web-0 %s:8080,ready web-1 %s:8080,ready web-2 %s:8080", view["web-0"].ip, view["web-1"].ip, view["web-2"].ip)
	eventually(t, "Endpoints object with three ready addresses", func(ctx context.Context) (bool, error) {
		got, err := endpointsView(ctx, cs, "web")
		return got == want, fmt.Errorf("got %q want %q: %w", got, want, err)
	})
	epObj, err := cs.CoreV1().Endpoints("default").Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if epObj.Labels["tier"] != "front" || epObj.Labels[discoveryv1.LabelSkipMirror] != "true" {
		t.Errorf("Endpoints labels = %v, want the Service's plus skip-mirror", epObj.Labels)
	}

	// Nothing changes: nothing is rewritten.
	before, err := cs.DiscoveryV1().EndpointSlices("default").List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=web"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Services("default").Patch(ctx, "web", "application/merge-patch+json",
		[]byte(`{"metadata":{"annotations":{"touched":"yes"}}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	after, err := cs.DiscoveryV1().EndpointSlices("default").List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=web"})
	if err != nil {
		t.Fatal(err)
	}
	if len(after.Items) != 1 || after.Items[0].ResourceVersion != before.Items[0].ResourceVersion {
		t.Errorf("an unrelated Service change rewrote the slice: rv %s -> %v", before.Items[0].ResourceVersion, after.Items)
	}

	// web-0 turns not ready, as its kubelet would report; its node's
	// kubelet is stopped first so that the simulation does not undo it.
	nodes.StopNode("n3")
	pod, err := cs.CoreV1().Pods("default").Get(ctx, "web-0", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range pod.Status.Conditions {
		if pod.Status.Conditions[i].Type == corev1.PodReady {
			pod.Status.Conditions[i].Status = corev1.ConditionFalse
		}
	}
	if _, err := cs.CoreV1().Pods("default").UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "web-0 not ready", func(ctx context.Context) (bool, error) {
		eps, _, err := sliceView(ctx, cs, svc)
		e := eps["web-0"]
		return len(eps) == 3 && !e.ready && !e.serving && !e.terminating && eps["web-1"].ready, err
	})
	want = fmt.Sprintf("notready web-0 %s:8080,ready web-1 %s:8080,ready web-2 %s:8080", view["web-0"].ip, view["web-1"].ip, view["web-2"].ip)
	eventually(t, "Endpoints lists web-0 as not ready", func(ctx context.Context) (bool, error) {
		got, err := endpointsView(ctx, cs, "web")
		return got == want, fmt.Errorf("got %q want %q: %w", got, want, err)
	})

	// publishNotReadyAddresses lists the same pod as ready.
	peers, err := cs.CoreV1().Services("default").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "peers"},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "web"}, PublishNotReadyAddresses: true, ClusterIP: corev1.ClusterIPNone,
			Ports: []corev1.ServicePort{{Name: "peer", Port: 7000, TargetPort: intstr.FromInt32(7000)}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cs.CoreV1().Services("default").Delete(context.Background(), "peers", metav1.DeleteOptions{})
	})
	eventually(t, "peers lists the not-ready pod as ready", func(ctx context.Context) (bool, error) {
		eps, _, err := sliceView(ctx, cs, peers)
		e := eps["web-0"]
		return len(eps) == 3 && e.ready && !e.serving && e.port == 7000, fmt.Errorf("%v: %w", eps, err)
	})
	want = fmt.Sprintf("ready web-0 %s:7000,ready web-1 %s:7000,ready web-2 %s:7000", view["web-0"].ip, view["web-1"].ip, view["web-2"].ip)
	eventually(t, "peers Endpoints all ready", func(ctx context.Context) (bool, error) {
		got, err := endpointsView(ctx, cs, "peers")
		return got == want, fmt.Errorf("got %q want %q: %w", got, want, err)
	})

	// A pod whose port named http is 9090 gets a slice of its own.
	if _, err := cs.CoreV1().Pods("default").Create(ctx, webPod("web-3", "n2", 9090), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "web-3 on port 9090 in a second slice", func(ctx context.Context) (bool, error) {
		eps, n, err := sliceView(ctx, cs, svc)
		return n == 2 && eps["web-3"].port == 9090 && eps["web-3"].ready && eps["web-1"].port == 8080, fmt.Errorf("%d slices %v: %w", n, eps, err)
	})

	// Deleting web-0 (its kubelet is gone, so it stays terminating) keeps
	// it in the slice as terminating and drops it from Endpoints; deleting
	// web-1 on a live node removes it.
	if err := cs.CoreV1().Pods("default").Delete(ctx, "web-0", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := cs.CoreV1().Pods("default").Delete(ctx, "web-1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "web-1 gone, web-0 terminating", func(ctx context.Context) (bool, error) {
		eps, _, err := sliceView(ctx, cs, svc)
		_, has1 := eps["web-1"]
		e := eps["web-0"]
		return !has1 && e.terminating && !e.ready && len(eps) == 3, fmt.Errorf("%v: %w", eps, err)
	})
	want = fmt.Sprintf("ready web-2 %s:8080,ready web-3 ", view["web-2"].ip)
	eventually(t, "Endpoints without web-0 and web-1", func(ctx context.Context) (bool, error) {
		got, err := endpointsView(ctx, cs, "web")
		return strings.HasPrefix(got, want) && strings.HasSuffix(got, ":9090") && strings.Count(got, "ready") == 2, fmt.Errorf("got %q: %w", got, err)
	})

	// Deleting the Service removes its slices and its Endpoints.
	if err := cs.CoreV1().Services("default").Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "slices and Endpoints of a deleted Service gone", func(ctx context.Context) (bool, error) {
		list, err := cs.DiscoveryV1().EndpointSlices("default").List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=web"})
		if err != nil {
			return false, err
		}
		_, err = cs.CoreV1().Endpoints("default").Get(ctx, "web", metav1.GetOptions{})
		return len(list.Items) == 0 && err != nil, nil
	})
}
