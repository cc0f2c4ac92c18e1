package e2e

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/wasmkube/wasmkube/internal/simnode"
)

// startSimNodes plays the node agents for the binary's control plane: real
// scheduler and controllers, nodes simulated by this test process.
func startSimNodes(t *testing.T, s *Server, names ...string) {
	t.Helper()
	client, err := kubernetes.NewForConfig(s.RESTConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	nodes := make([]simnode.NodeSpec, len(names))
	for i, n := range names {
		nodes[i] = simnode.NodeSpec{Name: n}
	}
	c, err := simnode.Start(ctx, client, simnode.Options{Nodes: nodes})
	if err != nil {
		cancel()
		t.Fatalf("simulated nodes: %v", err)
	}
	t.Cleanup(func() { c.Stop(); cancel() })
}

// waitKubectl reruns a kubectl command until its stdout satisfies cond.
func waitKubectl(t *testing.T, s *Server, what string, cond func(string) bool, args ...string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var last Result
	for time.Now().Before(deadline) {
		last = s.Kubectl(t, args...)
		if last.ExitCode == 0 && cond(last.Stdout) {
			return last.Stdout
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("waiting for %s: last output of kubectl %v:\n%s", what, args, last)
	return ""
}

var nginxPodName = regexp.MustCompile(`^nginx-test-[a-z0-9]{8,10}-[a-z0-9]{5}$`)

func runningNginxPods(out string) []string {
	var names []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) >= 3 && f[1] == "1/1" && f[2] == "Running" {
			names = append(names, f[0])
		}
	}
	return names
}

// TestSeedDeploymentWalkthrough is the seeds' Deployment walk-through with
// kubectl: the controllers keep two pods, a deleted one comes back under a
// new name, deleting the Deployment takes its ReplicaSet and pods along,
// and a standalone pod, once deleted, stays deleted.
func TestSeedDeploymentWalkthrough(t *testing.T) {
	s := StartServer(t, ServerOptions{})
	startSimNodes(t, s, "edge-1", "edge-2")
	s.MustKubectl(t, "apply", "-f", repoFile(t, "examples/nginx-deploy.yaml"))

	waitKubectl(t, s, "the deployment to be available", func(out string) bool {
		return regexp.MustCompile(`(?m)^nginx-test\s+2/2\s+2\s+2\s+`).MatchString(out)
	}, "get", "deploy", "-l", "app=nginx-deploy")
	rs := s.MustKubectl(t, "get", "rs", "-l", "app=nginx")
	if !regexp.MustCompile(`(?m)^NAME\s+DESIRED\s+CURRENT\s+READY\s+AGE\n^nginx-test-[a-z0-9]+\s+2\s+2\s+2\s+`).MatchString(rs) {
		t.Fatalf("get rs:\n%s", rs)
	}
	out := waitKubectl(t, s, "two running pods", func(out string) bool { return len(runningNginxPods(out)) == 2 },
		"get", "pods", "-o", "wide", "-l", "app=nginx")
	pods := runningNginxPods(out)
	for _, p := range pods {
		if !nginxPodName.MatchString(p) {
			t.Fatalf("pod name %q is not nginx-test-<hash>-<5 chars>", p)
		}
	}
	if !strings.Contains(out, "edge-") {
		t.Fatalf("pods are not placed on the nodes:\n%s", out)
	}

	s.MustKubectl(t, "delete", "pods", pods[0])
	waitKubectl(t, s, "a replacement pod", func(out string) bool {
		now := runningNginxPods(out)
		return len(now) == 2 && !strings.Contains(out, pods[0]+" ")
	}, "get", "pods", "-l", "app=nginx")

	s.MustKubectl(t, "delete", "-f", repoFile(t, "examples/nginx-deploy.yaml"))
	waitKubectl(t, s, "the ReplicaSet and pods to go", func(string) bool {
		r := s.Kubectl(t, "get", "rs,pods", "-l", "app=nginx")
		return r.ExitCode == 0 && strings.TrimSpace(r.Stdout) == "" && strings.Contains(r.Stderr, "No resources found")
	}, "get", "ns", "default")

	s.MustKubectl(t, "apply", "-f", repoFile(t, "examples/tomcat-pod.yaml"))
	waitKubectl(t, s, "the standalone pod to run", func(out string) bool {
		return regexp.MustCompile(`(?m)^tomcat-test\s+1/1\s+Running`).MatchString(out)
	}, "get", "pods")
	s.MustKubectl(t, "delete", "pod", "tomcat-test")
	time.Sleep(2 * time.Second) // long enough for any controller to have brought it back
	if r := s.Kubectl(t, "get", "pods"); strings.TrimSpace(r.Stdout) != "" || !strings.Contains(r.Stderr, "No resources found in default namespace.") {
		t.Fatalf("a standalone pod came back after delete:\n%s", r)
	}
}

// TestRolloutWithKubectl drives a Deployment through kubectl's rollout verbs:
// set image, status, history, undo, pause, resume, restart, and scale.
func TestRolloutWithKubectl(t *testing.T) {
	s := StartServer(t, ServerOptions{})
	startSimNodes(t, s, "edge-1")
	s.MustKubectl(t, "apply", "-f", repoFile(t, "examples/nginx-deploy.yaml"))
	rolledOut := func() {
		t.Helper()
		out := s.MustKubectl(t, "rollout", "status", "deployment/nginx-test", "--timeout=60s")
		if !strings.Contains(out, `deployment "nginx-test" successfully rolled out`) {
			t.Fatalf("rollout status:\n%s", out)
		}
	}
	image := func() string {
		return s.MustKubectl(t, "get", "deploy", "nginx-test", "-o", "jsonpath={.spec.template.spec.containers[0].image}")
	}
	rolledOut()
	s.MustKubectl(t, "set", "image", "deployment/nginx-test", "nginx=nginx:1.27")
	rolledOut()
	history := s.MustKubectl(t, "rollout", "history", "deployment/nginx-test")
	if !regexp.MustCompile(`(?m)^REVISION\s+CHANGE-CAUSE\n1\s+<none>\n2\s+<none>$`).MatchString(strings.TrimSpace(history)) {
		t.Fatalf("rollout history:\n%s", history)
	}
	// kubectl warns, as it does against Kubernetes, that undo bypasses the
	// last-applied annotation of an applied Deployment.
	undo := func(args ...string) {
		t.Helper()
		r := s.Kubectl(t, append([]string{"rollout", "undo", "deployment/nginx-test"}, args...)...)
		if r.ExitCode != 0 || !strings.Contains(r.Stdout, "deployment.apps/nginx-test rolled back") {
			t.Fatalf("rollout undo %v:\n%s", args, r)
		}
	}
	undo()
	rolledOut()
	if got := image(); got != "nginx" {
		t.Fatalf("image after undo = %q, want nginx", got)
	}
	undo("--to-revision=2")
	rolledOut()
	if got := image(); got != "nginx:1.27" {
		t.Fatalf("image after undo --to-revision=2 = %q, want nginx:1.27", got)
	}
	s.MustKubectl(t, "rollout", "pause", "deployment/nginx-test")
	s.MustKubectl(t, "set", "image", "deployment/nginx-test", "nginx=nginx:1.28")
	time.Sleep(time.Second)
	if rs := s.MustKubectl(t, "get", "rs", "-l", "app=nginx", "-o", "name"); strings.Count(rs, "\n") != 2 {
		t.Fatalf("a paused deployment rolled out anyway; replica sets:\n%s", rs)
	}
	s.MustKubectl(t, "rollout", "resume", "deployment/nginx-test")
	rolledOut()
	s.MustKubectl(t, "rollout", "restart", "deployment/nginx-test")
	rolledOut()
	s.MustKubectl(t, "scale", "deployment/nginx-test", "--replicas=3")
	waitKubectl(t, s, "three ready replicas", func(out string) bool {
		return regexp.MustCompile(`(?m)^nginx-test\s+3/3\s+3\s+3\s+`).MatchString(out)
	}, "get", "deploy", "nginx-test")
}
