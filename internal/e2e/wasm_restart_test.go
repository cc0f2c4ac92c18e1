package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wasmkube/wasmkube/sandbox/wasmhost"
)

// wasmDeployment is a Deployment of the wasm test server, runtime class
// wasm, serving on 8080.
func wasmDeployment(name string, replicas int) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: %[1]s
spec:
  replicas: %[2]d
  selector:
    matchLabels:
      app: %[1]s
  template:
    metadata:
      labels:
        app: %[1]s
    spec:
      runtimeClassName: wasm
      terminationGracePeriodSeconds: 5
      containers:
      - name: app
        image: %[3]s
        imagePullPolicy: Never
        ports:
        - containerPort: 8080
`, name, replicas, wasmImage)
}

// sandboxProcesses maps the socket of each pod's sandbox process in the
// agent data directory dir to the pid the process answers with on it.
// Sandboxes kept warm for pods to come have no pod yet and are left out.
func sandboxProcesses(t testing.TB, dir string) map[string]int {
	t.Helper()
	socks, err := filepath.Glob(filepath.Join(dir, "wasm", "sandboxes", "*.sock"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, sock := range socks {
		if strings.HasPrefix(filepath.Base(sock), "warm-") {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c, err := wasmhost.Dial(ctx, sock)
		cancel()
		if err != nil {
			continue
		}
		out[sock] = c.Pid()
		c.Close()
	}
	return out
}

// TestWasmAgentKill9: while clients keep requesting from wasm pods, the
// agent is killed with SIGKILL and started again. Not one request fails,
// the sandbox processes are the same ones, and the pods come back
// unchanged: same container ids, restart counts and IPs.
func TestWasmAgentKill9(t *testing.T) {
	n := StartSplitNode(t, SplitNodeOptions{})
	importTestImages(t, n, wasmImage)
	nt := newNodeTest(t, n.Node)
	ns := nt.namespace(t, "wasm-kill9")
	nt.apply(t, ns, wasmDeployment("wasm-web", 3))
	before := nt.runningPods(t, ns, 3)
	views := map[string]podView{}
	var urls []string
	for name, p := range before {
		views[name] = viewOf(p)
		urls = append(urls, fmt.Sprintf("http://%s:8080/", p.Status.PodIP))
		nt.waitHTTP(t, p, 8080, "/", podTimeout, bodyIs("hello from wasm "+name+"\n"))
	}
	sandboxes := sandboxProcesses(t, n.AgentDir)
	if len(sandboxes) != 3 {
		t.Fatalf("%d sandbox processes, want one per pod: %v", len(sandboxes), sandboxes)
	}

	var gets []func() error
	for _, url := range urls {
		gets = append(gets, func() error { _, err := httpGet(url); return err })
	}
	load := StartLoad(gets...)

	n.KillAgent(t)
	time.Sleep(2 * time.Second)
	for sock, pid := range sandboxes {
		if !processAlive(uint32(pid)) {
			t.Errorf("sandbox %s (pid %d) died with the agent", sock, pid)
		}
	}
	n.StartAgent(t)
	after := nt.runningPods(t, ns, 3)
	time.Sleep(2 * time.Second)
	load.Stop()

	if f := load.Failures.Load(); f > 0 {
		t.Errorf("%d of %d requests failed across the agent restart; first: %v", f, load.Requests.Load(), load.FirstFailure())
	}
	if load.Requests.Load() < 100 {
		t.Errorf("only %d requests made: the clients did not keep the pods busy", load.Requests.Load())
	}
	for name, p := range after {
		was, ok := views[name]
		if !ok {
			t.Errorf("pod %s is new after the agent restart: %s", name, podSummary(p))
		} else if now := viewOf(p); now.String() != was.String() {
			t.Errorf("pod %s changed across the agent restart:\nbefore %s\nafter  %s", name, was, now)
		}
	}
	if now := sandboxProcesses(t, n.AgentDir); fmt.Sprint(now) != fmt.Sprint(sandboxes) {
		t.Errorf("sandbox processes before the restart %v, after %v", sandboxes, now)
	}
	t.Logf("%d requests, %d failed", load.Requests.Load(), load.Failures.Load())
}
