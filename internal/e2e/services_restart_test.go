package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

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

	var requests, failures atomic.Int64
	var firstFailure atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				requests.Add(1)
				if err := get(); err != nil {
					failures.Add(1)
					firstFailure.CompareAndSwap(nil, err.Error())
				}
			}
		})
	}
	n.KillAgent(t)
	time.Sleep(2 * time.Second)
	n.StartAgent(t)
	time.Sleep(2 * time.Second)
	close(stop)
	wg.Wait()
	if f := failures.Load(); f > 0 {
		t.Errorf("%d of %d requests through the ClusterIP failed across the agent restart; first: %v", f, requests.Load(), firstFailure.Load())
	}
	if requests.Load() < 100 {
		t.Errorf("only %d requests made", requests.Load())
	}
	t.Logf("%d requests through %s, %d failed", requests.Load(), url, failures.Load())
}
