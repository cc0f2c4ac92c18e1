package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/wasmkube/wasmkube/sandbox/network"

	"github.com/wasmkube/wasmkube/internal/testimages"
)

// The test images, imported into the node under these names. The registry
// part keeps them from being read as Docker Hub names.
const (
	helloImage   = "wasmkube.test/e2e/hello:v1"
	busyboxImage = "wasmkube.test/e2e/busybox:v1"
)

const (
	// podTimeout bounds each wait for a pod to reach a state: generous,
	// since the node tests run side by side on a small machine.
	podTimeout = 90 * time.Second
	// volumeUpdateTimeout bounds the refresh of a configMap or secret
	// volume after its object changed (upstream: the sync period plus the
	// cache TTL, about a minute).
	volumeUpdateTimeout = 90 * time.Second
)

// nodeTest is what the node tests share: one `wasmkube up` with the test
// images imported. Starting a node takes seconds, so TestNode starts one
// and runs every node test against it, in parallel, each in a namespace of
// its own.
type nodeTest struct {
	*Node
	cidr *net.IPNet
}

// TestNode runs the node acceptance tests against one `wasmkube up`, then
// checks that none of them made the node write a firewall rule. The
// snapshot the check compares with is taken before the node starts.
func TestNode(t *testing.T) {
	before := FirewallRules(t)
	nt := startNodeTest(t, NodeOptions{}, helloImage, busyboxImage)
	n, cidr := nt.Node, nt.cidr

	t.Run("pods", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			run  func(*testing.T, *nodeTest)
		}{
			{"SeedStandalonePod", testSeedStandalonePod},
			{"SeedDeployment", testSeedDeployment},
			{"SidecarSharesEmptyDir", testSidecarSharesEmptyDir},
			{"InitContainerRunsFirst", testInitContainerRunsFirst},
			{"InitContainerFailsNever", testInitContainerFailsNever},
			{"InitContainerFailsAlways", testInitContainerFailsAlways},
			{"RestartAlwaysCrashLoops", testRestartAlwaysCrashLoops},
			{"RestartOnFailureSucceeds", testRestartOnFailureSucceeds},
			{"RestartOnFailureRestarts", testRestartOnFailureRestarts},
			{"RestartNeverFails", testRestartNeverFails},
			{"MemoryLimitOOMKilled", testMemoryLimitOOMKilled},
			{"ConfigMapAndSecret", testConfigMapAndSecret},
			{"MissingConfigMap", testMissingConfigMap},
			{"ActiveDeadline", testActiveDeadline},
			{"HostNetwork", testHostNetwork},
			{"ImagePullFails", testImagePullFails},
			{"ExamplePersistentVolume", testExamplePersistentVolume},
			{"ExampleProbes", testExampleProbes},
		} {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				tc.run(t, nt)
			})
		}
	})

	after := FirewallRules(t)
	for _, word := range []string{n.Bridge, n.ClusterCIDR, strings.TrimSuffix(cidr.IP.String(), "0"), "wasmkube"} {
		if strings.Contains(strings.ToLower(after), strings.ToLower(word)) {
			t.Errorf("firewall rules mention %q:\n%s", word, after)
		}
	}
	if wk := regexp.MustCompile(`(?i)\bwk`).FindString(after); wk != "" {
		t.Errorf("firewall rules mention a wk name:\n%s", after)
	}
	if after != before {
		t.Errorf("firewall rules changed while the node ran pods\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// startNodeTest starts a node with the test images named by refs
// imported.
func startNodeTest(t *testing.T, opts NodeOptions, refs ...string) *nodeTest {
	t.Helper()
	n := StartNode(t, opts)
	importTestImages(t, n, refs...)
	return newNodeTest(t, n)
}

// newNodeTest is the nodeTest of node n.
func newNodeTest(t *testing.T, n *Node) *nodeTest {
	t.Helper()
	_, cidr, err := net.ParseCIDR(n.ClusterCIDR)
	if err != nil {
		t.Fatal(err)
	}
	return &nodeTest{Node: n, cidr: cidr}
}

// importTestImages builds the test images named by refs (helloImage,
// busyboxImage, grpcHealthImage, wasmImage) and imports them into n.
func importTestImages(t *testing.T, n interface{ ImportImage(testing.TB, string) }, refs ...string) {
	t.Helper()
	for _, ref := range refs {
		var archive string
		switch ref {
		case helloImage:
			archive = testimages.BuildHelloOCIArchive(t, ref)
		case busyboxImage:
			archive = testimages.BuildBusyboxOCIArchive(t, ref)
		case grpcHealthImage:
			archive = testimages.BuildGRPCHealthOCIArchive(t, ref)
		case wasmImage:
			archive = testimages.BuildWasmOCIArchive(t, ref, repoFile(t, "internal/e2e/testdata/wasmapp"))
		case collectorImage, logShipperImage, codeSyncImage, localhostImage:
			archive = buildWasmExampleImage(t, ref)
		default:
			t.Fatalf("no test image %s", ref)
		}
		n.ImportImage(t, archive)
	}
}

// namespace creates a namespace for one test.
func (nt *nodeTest) namespace(t *testing.T, name string) string {
	t.Helper()
	nt.MustKubectl(t, "create", "namespace", name)
	return name
}

// apply runs `kubectl apply -f -` with manifest in namespace ns.
func (nt *nodeTest) apply(t *testing.T, ns, manifest string) string {
	t.Helper()
	r := nt.KubectlStdin(t, manifest, "apply", "-n", ns, "-f", "-")
	if r.ExitCode != 0 || r.Stderr != "" {
		t.Fatalf("kubectl apply:\n%s\nmanifest:\n%s", r, manifest)
	}
	return r.Stdout
}

// waitPod polls the pod until cond returns nil and returns it; cond says
// what is still missing otherwise, which the failure reports along with
// the pod's status.
func (nt *nodeTest) waitPod(t *testing.T, ns, name string, timeout time.Duration, what string, cond func(*corev1.Pod) error) *corev1.Pod {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		p, err := nt.Client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		cancel()
		if err == nil {
			if err = cond(p); err == nil {
				return p
			}
			err = fmt.Errorf("%w\n%s", err, podSummary(p))
		}
		if time.Now().After(deadline) {
			t.Fatalf("pod %s/%s not %s within %s: %v", ns, name, what, timeout, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitRunning waits until the pod runs, all its containers are ready and
// it has an IP from the node's pod CIDR, and returns it.
func (nt *nodeTest) waitRunning(t *testing.T, ns, name string) *corev1.Pod {
	t.Helper()
	return nt.waitPod(t, ns, name, podTimeout, "Running and Ready", func(p *corev1.Pod) error {
		switch {
		case p.Status.Phase != corev1.PodRunning:
			return fmt.Errorf("phase %s", p.Status.Phase)
		case !podCondition(p, corev1.PodReady):
			return fmt.Errorf("not Ready")
		case p.Status.PodIP == "":
			return fmt.Errorf("no pod IP")
		case !nt.cidr.Contains(net.ParseIP(p.Status.PodIP)):
			return fmt.Errorf("pod IP %s outside the cluster CIDR %s", p.Status.PodIP, nt.cidr)
		}
		for _, cs := range p.Status.ContainerStatuses {
			if cs.State.Running == nil || !cs.Ready {
				return fmt.Errorf("container %s not running and ready", cs.Name)
			}
		}
		return nil
	})
}

// waitSucceeded waits until the pod's phase is Succeeded and returns it.
func (nt *nodeTest) waitSucceeded(t *testing.T, ns, name string) *corev1.Pod {
	t.Helper()
	return nt.waitPod(t, ns, name, podTimeout, "Succeeded", func(p *corev1.Pod) error {
		if p.Status.Phase != corev1.PodSucceeded {
			return fmt.Errorf("phase %s", p.Status.Phase)
		}
		return nil
	})
}

// waitContainerRunning waits until the pod's container runs and returns
// the pod.
func (nt *nodeTest) waitContainerRunning(t *testing.T, ns, name, container string) *corev1.Pod {
	t.Helper()
	return nt.waitPod(t, ns, name, podTimeout, "running its container "+container, func(p *corev1.Pod) error {
		if cs := containerStatus(p, container); cs == nil || cs.State.Running == nil {
			return fmt.Errorf("not running")
		}
		return nil
	})
}

func podCondition(p *corev1.Pod, typ corev1.PodConditionType) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == typ {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// containerStatus returns the status of container name, init or not.
func containerStatus(p *corev1.Pod, name string) *corev1.ContainerStatus {
	for _, list := range [][]corev1.ContainerStatus{p.Status.InitContainerStatuses, p.Status.ContainerStatuses} {
		for i := range list {
			if list[i].Name == name {
				return &list[i]
			}
		}
	}
	return nil
}

// mustContainer is containerStatus failing the test when there is none.
func mustContainer(t *testing.T, p *corev1.Pod, name string) *corev1.ContainerStatus {
	t.Helper()
	cs := containerStatus(p, name)
	if cs == nil {
		t.Fatalf("no status for container %s:\n%s", name, podSummary(p))
	}
	return cs
}

// podSummary is a pod's status in a few lines, for failure messages.
func podSummary(p *corev1.Pod) string {
	var b strings.Builder
	fmt.Fprintf(&b, "  phase %s reason %q message %q podIP %q", p.Status.Phase, p.Status.Reason, p.Status.Message, p.Status.PodIP)
	for _, c := range p.Status.Conditions {
		fmt.Fprintf(&b, " %s=%s", c.Type, c.Status)
	}
	for _, list := range [][]corev1.ContainerStatus{p.Status.InitContainerStatuses, p.Status.ContainerStatuses} {
		for _, cs := range list {
			fmt.Fprintf(&b, "\n  container %s: ready %t restarts %d state %s last %s", cs.Name, cs.Ready, cs.RestartCount, stateString(cs.State), stateString(cs.LastTerminationState))
		}
	}
	return b.String()
}

func stateString(s corev1.ContainerState) string {
	switch {
	case s.Waiting != nil:
		return fmt.Sprintf("Waiting(%s: %s)", s.Waiting.Reason, s.Waiting.Message)
	case s.Running != nil:
		return "Running"
	case s.Terminated != nil:
		return fmt.Sprintf("Terminated(%s, exit %d: %s)", s.Terminated.Reason, s.Terminated.ExitCode, s.Terminated.Message)
	}
	return "none"
}

// terminated checks a container state against the reason and exit code
// upstream reports.
func terminated(s corev1.ContainerState, reason string, exitCode int32) error {
	if s.Terminated == nil || s.Terminated.Reason != reason || s.Terminated.ExitCode != exitCode {
		return fmt.Errorf("want Terminated(%s, exit %d), have %s", reason, exitCode, stateString(s))
	}
	return nil
}

// neverStarted checks that a container has not run: it waits, with
// reason, and has no earlier termination.
func neverStarted(cs *corev1.ContainerStatus, reason string) error {
	if cs == nil {
		return fmt.Errorf("no status")
	}
	if cs.State.Waiting == nil || cs.State.Waiting.Reason != reason || cs.LastTerminationState.Terminated != nil || cs.RestartCount != 0 {
		return fmt.Errorf("container %s: want Waiting(%s), never run; have %s, last %s, restarts %d",
			cs.Name, reason, stateString(cs.State), stateString(cs.LastTerminationState), cs.RestartCount)
	}
	return nil
}

// kubectlRow is a pod's line in `kubectl get pods`: NAME READY STATUS
// RESTARTS AGE, split into fields (RESTARTS may carry "(5s ago)").
func (nt *nodeTest) kubectlRow(t *testing.T, ns, name string) []string {
	t.Helper()
	out := nt.MustKubectl(t, "get", "pods", name, "-n", ns, "--no-headers")
	f := strings.Fields(out)
	if len(f) < 5 || f[0] != name {
		t.Fatalf("kubectl get pods %s: unexpected output %q", name, out)
	}
	return f
}

// waitStatus reruns `kubectl get pods` until the pod's STATUS column is one
// of want, and returns it.
func (nt *nodeTest) waitStatus(t *testing.T, ns, name string, timeout time.Duration, want ...string) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var seen []string
	for {
		status := nt.kubectlRow(t, ns, name)[2]
		if slices.Contains(want, status) {
			return status
		}
		if len(seen) == 0 || seen[len(seen)-1] != status {
			seen = append(seen, status)
		}
		if time.Now().After(deadline) {
			t.Fatalf("kubectl get pods %s -n %s: STATUS never one of %q within %s; it showed %q", name, ns, want, timeout, seen)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// httpClient reaches pods from the test process, through the node's bridge.
var httpClient = &http.Client{Timeout: 5 * time.Second}

func httpGet(url string) (string, error) { return httpGetWith(httpClient, url) }

// waitHTTP polls http://<pod IP>:port/path until cond accepts the body,
// and returns the body. cond says what is wrong with a body it rejects.
// The failure shows the pod's status and the node's view of its network.
func (nt *nodeTest) waitHTTP(t *testing.T, pod *corev1.Pod, port int, path string, timeout time.Duration, cond func(body string) error) string {
	t.Helper()
	url := fmt.Sprintf("http://%s/%s", net.JoinHostPort(pod.Status.PodIP, fmt.Sprint(port)), strings.TrimPrefix(path, "/"))
	deadline := time.Now().Add(timeout)
	for {
		body, err := httpGet(url)
		if err == nil {
			if err = cond(body); err == nil {
				return body
			}
		}
		if time.Now().After(deadline) {
			now, gerr := nt.Client.CoreV1().Pods(pod.Namespace).Get(context.Background(), pod.Name, metav1.GetOptions{})
			status := fmt.Sprint(gerr)
			if gerr == nil {
				status = podSummary(now)
			}
			t.Fatalf("GET %s: no good answer within %s: %v (last body %q)\npod now:\n%s\nnetwork:\n%s",
				url, timeout, err, body, status, nt.networkDiag(pod))
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// networkDiag is what the node's network looks like for pod: its host
// veth, the neighbour entry and route for its IP, and its namespace.
func (nt *nodeTest) networkDiag(pod *corev1.Pod) string {
	var b strings.Builder
	run := func(argv ...string) {
		out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
		fmt.Fprintf(&b, "$ %s\n%s", strings.Join(argv, " "), out)
		if err != nil {
			fmt.Fprintf(&b, "(%v)\n", err)
		}
	}
	run("ip", "-d", "link", "show", network.HostVethName(string(pod.UID)))
	run("ip", "link", "show", "master", nt.Bridge)
	run("ip", "neigh", "show", pod.Status.PodIP)
	run("ip", "route", "get", pod.Status.PodIP)
	run("nsenter", "--net="+nt.NetnsPin(pod.UID), "ip", "addr")
	run("nsenter", "--net="+nt.NetnsPin(pod.UID), "ip", "route")
	return b.String()
}

// bodyIs is a waitHTTP condition for an exact body.
func bodyIs(want string) func(string) error {
	return func(body string) error {
		if body != want {
			return fmt.Errorf("body %q, want %q", body, want)
		}
		return nil
	}
}
