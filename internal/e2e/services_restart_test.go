package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
)

// logChanges logs each pod or EndpointSlice w reports, with the time, until
// the returned function stops it.
func logChanges(t *testing.T, w watch.Interface) (stop func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range w.ResultChan() {
			var what string
			switch o := ev.Object.(type) {
			case *corev1.Pod:
				what = "pod " + o.Name + ": " + podSummary(o)
			case *discoveryv1.EndpointSlice:
				var b strings.Builder
				for _, e := range o.Endpoints {
					fmt.Fprintf(&b, "%v ready=%s serving=%s term=%s; ", e.Addresses, boolString(e.Conditions.Ready), boolString(e.Conditions.Serving), boolString(e.Conditions.Terminating))
				}
				what = "slice: " + b.String()
			default:
				continue
			}
			t.Logf("%s %s %s", time.Now().Format("15:04:05.000"), ev.Type, what)
		}
	}()
	return func() { w.Stop(); <-done }
}

func boolString(b *bool) string {
	if b == nil {
		return "nil"
	}
	return fmt.Sprint(*b)
}

// TestServicesAgentKill9: while clients on the node keep requesting through
// a ClusterIP, each on a new connection, the agent is killed with SIGKILL
// and started again. The pinned maps and links keep the Service working:
// not one request fails.
func TestServicesAgentKill9(t *testing.T) {
	n := StartSplitNode(t, SplitNodeOptions{})
	importTestImages(t, n, helloImage)
	nt := newNodeTest(t, n.Node)
	ns := nt.namespace(t, "svc-kill9")
	nt.apply(t, ns, fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
      - name: hello
        image: %s
        imagePullPolicy: Never
        ports:
        - containerPort: 8080
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports:
  - {port: 80, targetPort: 8080}
`, helloImage))
	nt.MustKubectl(t, "-n", ns, "rollout", "status", "deploy/web", "--timeout=120s")
	vip := strings.TrimSpace(nt.MustKubectl(t, "-n", ns, "get", "svc", "web", "-o", "jsonpath={.spec.clusterIP}"))
	url := "http://" + vip + "/"
	// Through the socket hooks, which apply to this test process too: the
	// first answer tells that the Service is programmed.
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	get := func() error {
		resp, err := client.Get(url)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		return nil
	}
	deadline := time.Now().Add(podTimeout)
	for err := get(); err != nil; err = get() {
		if time.Now().After(deadline) {
			t.Fatalf("the Service %s never answered: %v", url, err)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// Paced, not flat out: a loop saturating both cores starves the
	// restarting containerd, which then gives up on live shims (a runtime
	// matter, not the Services').
	paced := func() error {
		defer time.Sleep(2 * time.Millisecond)
		return get()
	}
	load := StartLoad(paced, paced, paced)
	// What the restart does to the pods and the Service's endpoints, for
	// a failure to show.
	sliceWatch, err := n.Client.DiscoveryV1().EndpointSlices(ns).Watch(context.Background(), metav1.ListOptions{LabelSelector: "kubernetes.io/service-name=web"})
	if err != nil {
		t.Fatal(err)
	}
	defer logChanges(t, sliceWatch)()
	podWatch, err := n.Client.CoreV1().Pods(ns).Watch(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer logChanges(t, podWatch)()
	t.Logf("%s kill", time.Now().Format("15:04:05.000"))
	n.KillAgent(t)
	time.Sleep(2 * time.Second)
	t.Logf("%s start", time.Now().Format("15:04:05.000"))
	n.StartAgent(t)
	t.Logf("%s started, failures so far %d", time.Now().Format("15:04:05.000"), load.Failures.Load())
	time.Sleep(2 * time.Second)
	load.Stop()
	if f := load.Failures.Load(); f > 0 {
		t.Errorf("%d of %d requests through the ClusterIP failed across the agent restart; first: %v", f, load.Requests.Load(), load.FirstFailure())
	}
	if load.Requests.Load() < 100 {
		t.Errorf("only %d requests made", load.Requests.Load())
	}
	t.Logf("%d requests through %s, %d failed", load.Requests.Load(), url, load.Failures.Load())
}
