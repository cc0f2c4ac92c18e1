package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wasmkube/wasmkube/internal/syncbuf"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/remotecommand"

	"github.com/wasmkube/wasmkube/internal/pki"
	"github.com/wasmkube/wasmkube/internal/testimages"
)

// TestNodeStreams runs kubectl logs, exec, attach and port-forward against
// one `wasmkube up`: the API server proxies each to the node agent's
// kubelet port, which serves it from the container's log file, the
// runtime or the pod's network namespace.
func TestNodeStreams(t *testing.T) {
	n := StartNode(t, NodeOptions{})
	n.ImportImage(t, testimages.BuildHelloOCIArchive(t, helloImage))
	n.ImportImage(t, testimages.BuildBusyboxOCIArchive(t, busyboxImage))
	_, cidr, err := net.ParseCIDR(n.ClusterCIDR)
	if err != nil {
		t.Fatal(err)
	}
	nt := &nodeTest{Node: n, cidr: cidr}
	t.Run("streams", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			run  func(*testing.T, *nodeTest)
		}{
			{"Logs", testLogs},
			{"LogsPrevious", testLogsPrevious},
			{"LogsCompletedJob", testLogsCompletedJob},
			{"ContainerChoice", testContainerChoice},
			{"Exec", testExec},
			{"PortForward", testPortForward},
			{"Attach", testAttach},
			{"AttachTTY", testAttachTTY},
			{"AttachStdin", testAttachStdin},
			{"AttachStdinOnce", testAttachStdinOnce},
			{"AgentAuth", testAgentAuth},
			{"Discovery", testStreamsDiscovery},
		} {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				tc.run(t, nt)
			})
		}
	})
}

// kubectlEnv runs kubectl with extra environment variables.
func (nt *nodeTest) kubectlEnv(t *testing.T, env []string, stdin string, args ...string) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), CommandTimeout)
	defer cancel()
	cmd := nt.command(ctx, args)
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("kubectl %s: no answer within %s\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), CommandTimeout, &stdout, &stderr)
	}
	r := Result{Stdout: stdout.String(), Stderr: stderr.String()}
	if err != nil {
		if cmd.ProcessState == nil {
			t.Fatalf("running kubectl %s: %v", strings.Join(args, " "), err)
		}
		r.ExitCode = cmd.ProcessState.ExitCode()
	}
	return r
}

// spdyOnly makes kubectl skip its websocket protocols.
var spdyOnly = []string{"KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false", "KUBECTL_PORT_FORWARD_WEBSOCKETS=false"}

// kubectlProtocols are kubectl's two ways to stream: websockets, which it
// tries first, and SPDY, its fallback.
var kubectlProtocols = []struct {
	name string
	env  []string
}{{"websocket", nil}, {"spdy", spdyOnly}}

const tickerScript = `echo early; sleep 4; i=0; while true; do echo "tick $i"; echo "err $i" >&2; i=$((i+1)); sleep 1; done`

// testLogs: a Deployment's container logs, read with kubectl's options.
func testLogs(t *testing.T, nt *nodeTest) {
	ns := nt.namespace(t, "logs")
	nt.apply(t, ns, `apiVersion: apps/v1
kind: Deployment
metadata:
  name: ticker
spec:
  replicas: 1
  selector: {matchLabels: {app: ticker}}
  template:
    metadata: {labels: {app: ticker}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: app
        image: `+busyboxImage+`
        command: ["sh", "-c", `+strconv.Quote(tickerScript)+`]
`)
	pod := nt.waitPodWithLabel(t, ns, "app=ticker")
	nt.waitLogs(t, ns, "tick 3", "deploy/ticker")

	out := nt.MustKubectl(t, "-n", ns, "logs", "deploy/ticker")
	if !strings.HasPrefix(out, "early\ntick 0\nerr 0\n") && !strings.HasPrefix(out, "early\nerr 0\ntick 0\n") {
		t.Errorf("logs of deploy/ticker start with %q, want early, tick 0 and err 0", firstLines(out, 3))
	}

	out = nt.MustKubectl(t, "-n", ns, "logs", pod.Name, "--tail=2")
	if lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n"); len(lines) != 2 {
		t.Errorf("--tail=2 printed %d lines: %q", len(lines), out)
	}

	out = nt.MustKubectl(t, "-n", ns, "logs", pod.Name, "--tail=3", "--timestamps")
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		ts, _, ok := strings.Cut(line, " ")
		if _, err := time.Parse(time.RFC3339Nano, ts); !ok || err != nil {
			t.Errorf("--timestamps line %q does not start with an RFC 3339 time", line)
		}
	}

	out = nt.MustKubectl(t, "-n", ns, "logs", pod.Name, "--since=2s")
	if strings.Contains(out, "early") || !strings.Contains(out, "tick") {
		t.Errorf("--since=2s printed %q: want recent ticks and not the first line", out)
	}

	out = nt.MustKubectl(t, "-n", ns, "logs", pod.Name, "--limit-bytes=7")
	if out != "early\nt" && out != "early\ne" {
		t.Errorf("--limit-bytes=7 printed %q", out)
	}

	// A follower sees lines written after it started.
	before := nt.MustKubectl(t, "-n", ns, "logs", pod.Name, "--tail=1")
	last := tickNumber(t, before)
	f := nt.StartKubectl(t, 2*time.Minute, "-n", ns, "logs", "-f", "--tail=1", "deploy/ticker")
	f.WaitFor(t, time.Minute, "a line written while following", func(out string) bool {
		for _, m := range regexp.MustCompile(`tick (\d+)`).FindAllStringSubmatch(out, -1) {
			if n, _ := strconv.Atoi(m[1]); n > last+1 {
				return true
			}
		}
		return false
	})
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "\n")
}

func tickNumber(t *testing.T, s string) int {
	t.Helper()
	m := regexp.MustCompile(`(?:tick|err) (\d+)`).FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("no tick in %q", s)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// waitLogs waits until kubectl logs of target shows want.
func (nt *nodeTest) waitLogs(t *testing.T, ns, want string, target ...string) string {
	t.Helper()
	deadline := time.Now().Add(podTimeout)
	for {
		r := nt.Kubectl(t, append([]string{"-n", ns, "logs"}, target...)...)
		if r.ExitCode == 0 && strings.Contains(r.Stdout, want) {
			return r.Stdout
		}
		if time.Now().After(deadline) {
			t.Fatalf("logs of %s never showed %q: %s", target, want, r)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func (nt *nodeTest) waitPodWithLabel(t *testing.T, ns, selector string) *corev1.Pod {
	t.Helper()
	client := nt.clientset(t)
	deadline := time.Now().Add(podTimeout)
	for {
		list, err := client.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: selector})
		if err == nil {
			for i := range list.Items {
				if list.Items[i].Status.Phase == corev1.PodRunning {
					return &list.Items[i]
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no running pod with %s in %s", selector, ns)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func (nt *nodeTest) clientset(t *testing.T) kubernetes.Interface {
	t.Helper()
	c, err := kubernetes.NewForConfig(nt.RESTConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// testLogsPrevious: --previous shows the run before the restart, and says
// so when there was none.
func testLogsPrevious(t *testing.T, nt *nodeTest) {
	ns := nt.namespace(t, "previous")
	nt.apply(t, ns, `apiVersion: v1
kind: Pod
metadata:
  name: restarts
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: `+busyboxImage+`
    command: ["sh", "-c", "echo run-$(cat /proc/sys/kernel/random/uuid); sleep 1; exit 1"]
`)
	r := nt.Kubectl(t, "-n", ns, "logs", "restarts", "--previous")
	if r.ExitCode == 0 && r.Stdout != "" {
		// It restarted already: that is fine, the error is tested below
		// on a pod that never restarts.
		t.Logf("restarted before the first look: %s", r.Stdout)
	}
	nt.waitRestarts(t, ns, "restarts", "app", 1, corev1.PodRunning)
	prev := nt.MustKubectl(t, "-n", ns, "logs", "restarts", "--previous")
	cur := nt.waitLogs(t, ns, "run-", "restarts")
	if !strings.HasPrefix(prev, "run-") || prev == cur {
		t.Errorf("--previous printed %q, current %q: want two different runs", prev, cur)
	}

	nt.apply(t, ns, `apiVersion: v1
kind: Pod
metadata:
  name: steady
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: `+busyboxImage+`
    command: ["sleep", "3600"]
`)
	nt.waitRunning(t, ns, "steady")
	r = nt.Kubectl(t, "-n", ns, "logs", "steady", "--previous")
	want := `previous terminated container "app" in pod "steady" not found`
	if r.ExitCode == 0 || !strings.Contains(r.Stderr, want) {
		t.Errorf("logs --previous of a pod that never restarted: %s\nwant %q", r, want)
	}
}

// testLogsCompletedJob: a Job's logs are there after it completed.
func testLogsCompletedJob(t *testing.T, nt *nodeTest) {
	ns := nt.namespace(t, "joblogs")
	nt.apply(t, ns, `apiVersion: batch/v1
kind: Job
metadata:
  name: once
spec:
  template:
    spec:
      restartPolicy: Never
      terminationGracePeriodSeconds: 1
      containers:
      - name: work
        image: `+busyboxImage+`
        command: ["sh", "-c", "echo job output line; echo to stderr >&2"]
`)
	for deadline := time.Now().Add(podTimeout); ; time.Sleep(500 * time.Millisecond) {
		r := nt.Kubectl(t, "-n", ns, "get", "job", "once", "-o", "jsonpath={.status.succeeded}")
		if r.ExitCode == 0 && r.Stdout == "1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("job once did not complete: %s", r)
		}
	}
	out := nt.MustKubectl(t, "-n", ns, "logs", "job/once")
	if !strings.Contains(out, "job output line") || !strings.Contains(out, "to stderr") {
		t.Errorf("logs of the completed job: %q", out)
	}
	// Following a finished container ends at once with its output.
	out = nt.MustKubectl(t, "-n", ns, "logs", "-f", "job/once")
	if !strings.Contains(out, "job output line") {
		t.Errorf("logs -f of the completed job: %q", out)
	}
}

const pairManifest = `apiVersion: v1
kind: Pod
metadata:
  name: pair
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: a
    image: ` + busyboxImage + `
    command: ["sh", "-c", "echo from-a | tee /tmp/who; sleep 3600"]
  - name: b
    image: ` + busyboxImage + `
    command: ["sh", "-c", "echo from-b | tee /tmp/who; sleep 3600"]
`

// testContainerChoice: -c and --all-containers, and upstream's errors for
// a missing or unknown container name.
func testContainerChoice(t *testing.T, nt *nodeTest) {
	ns := nt.namespace(t, "choice")
	nt.apply(t, ns, pairManifest)
	nt.waitRunning(t, ns, "pair")
	nt.waitLogs(t, ns, "from-b", "pair", "-c", "b")
	if out := nt.MustKubectl(t, "-n", ns, "logs", "pair", "-c", "b"); out != "from-b\n" {
		t.Errorf("logs -c b: %q", out)
	}
	out := nt.MustKubectl(t, "-n", ns, "logs", "pair", "--all-containers")
	if !strings.Contains(out, "from-a") || !strings.Contains(out, "from-b") {
		t.Errorf("logs --all-containers: %q", out)
	}
	// kubectl picks the first container itself; the API server's own
	// answer is seen on the raw path.
	r := nt.Kubectl(t, "get", "--raw", "/api/v1/namespaces/"+ns+"/pods/pair/log")
	want := "a container name must be specified for pod pair, choose one of: [a b]"
	if r.ExitCode == 0 || !strings.Contains(r.Stderr, want) {
		t.Errorf("logs without -c on two containers: %s\nwant %q", r, want)
	}
	r = nt.Kubectl(t, "-n", ns, "logs", "pair", "-c", "nope")
	want = "container nope is not valid for pod pair"
	if r.ExitCode == 0 || !strings.Contains(r.Stderr, want) {
		t.Errorf("logs -c nope: %s\nwant %q", r, want)
	}
	r = nt.Kubectl(t, "-n", ns, "exec", "pair", "-c", "nope", "--", "true")
	if r.ExitCode == 0 || !strings.Contains(r.Stderr, want) {
		t.Errorf("exec -c nope: %s\nwant %q", r, want)
	}
}

// testExec: exec runs commands with stdin, returns their exit codes, over
// websockets and over SPDY, and with a TTY.
func testExec(t *testing.T, nt *nodeTest) {
	ns := nt.namespace(t, "exec")
	nt.apply(t, ns, pairManifest)
	nt.waitRunning(t, ns, "pair")
	for _, proto := range kubectlProtocols {
		t.Run(proto.name, func(t *testing.T) {
			r := nt.kubectlEnv(t, proto.env, "", "-n", ns, "exec", "pair", "-c", "b", "--", "sh", "-c", "echo out; echo err >&2; cat /tmp/who")
			if r.ExitCode != 0 || r.Stdout != "out\nfrom-b\n" || r.Stderr != "err\n" {
				t.Errorf("exec in b: %s", r)
			}
			r = nt.kubectlEnv(t, proto.env, "", "-n", ns, "exec", "pair", "-c", "a", "--", "sh", "-c", "exit 7")
			if r.ExitCode != 7 {
				t.Errorf("exec of exit 7: %s", r)
			}
			r = nt.kubectlEnv(t, proto.env, "line one\nline two\n", "-n", ns, "exec", "-i", "pair", "-c", "a", "--", "sh", "-c", "wc -l; cat")
			if r.ExitCode != 0 || r.Stdout != "2\n" {
				t.Errorf("exec -i wc -l: %s", r)
			}
		})
	}

	r := nt.Kubectl(t, "-n", ns, "exec", "pair", "--", "cat", "/tmp/who")
	if r.ExitCode != 0 || r.Stdout != "from-a\n" || !strings.Contains(r.Stderr, `Defaulted container "a" out of: a, b`) {
		t.Errorf("exec without -c in a two-container pod: %s", r)
	}

	t.Run("tty", func(t *testing.T) {
		cfg := nt.RESTConfig(t)
		client := nt.clientset(t)
		req := client.CoreV1().RESTClient().Post().Resource("pods").Namespace(ns).Name("pair").SubResource("exec").
			VersionedParams(&corev1.PodExecOptions{Container: "a", Command: []string{"sh", "-c", "tty; test -t 0 && test -t 1 && echo both-ttys"}, Stdin: true, Stdout: true, TTY: true}, scheme.ParameterCodec)
		exec, err := remotecommand.NewWebSocketExecutor(cfg, "GET", req.URL().String())
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		sizes := &fixedSize{size: remotecommand.TerminalSize{Width: 91, Height: 27}}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		// A stdin that stays open while the command runs, as a terminal's.
		stdin, stdinW := io.Pipe()
		defer stdinW.Close()
		err = exec.StreamWithContext(ctx, remotecommand.StreamOptions{Stdin: stdin, Stdout: &out, Tty: true, TerminalSizeQueue: sizes})
		if err != nil {
			t.Fatalf("tty exec: %v (output %q)", err, out.String())
		}
		// A terminal ends lines with CR LF.
		if !strings.Contains(out.String(), "/dev/pts/") || !strings.Contains(out.String(), "both-ttys\r\n") {
			t.Errorf("tty exec printed %q: want a pts as stdin and stdout", out.String())
		}
	})
}

// fixedSize hands out one terminal size, then waits for the end.
type fixedSize struct {
	size remotecommand.TerminalSize
	sent bool
}

func (f *fixedSize) Next() *remotecommand.TerminalSize {
	if f.sent {
		return nil
	}
	f.sent = true
	return &f.size
}

// testPortForward: port-forward reaches the hello server inside the pod,
// over websockets and over SPDY.
func testPortForward(t *testing.T, nt *nodeTest) {
	ns := nt.namespace(t, "forward")
	nt.apply(t, ns, `apiVersion: v1
kind: Pod
metadata:
  name: hello
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: hello
    image: `+helloImage+`
`)
	nt.waitRunning(t, ns, "hello")
	for _, proto := range kubectlProtocols {
		t.Run(proto.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			cmd := nt.command(ctx, []string{"-n", ns, "port-forward", "pod/hello", ":" + strconv.Itoa(testimages.HelloPort)})
			cmd.Env = append(cmd.Env, proto.env...)
			var stdout, stderr syncbuf.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { cancel(); _ = cmd.Wait() }()
			re := regexp.MustCompile(`Forwarding from 127\.0\.0\.1:(\d+) ->`)
			var port string
			for deadline := time.Now().Add(time.Minute); port == ""; {
				if m := re.FindStringSubmatch(stdout.String()); m != nil {
					port = m[1]
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("port-forward did not start: stdout %q stderr %q", stdout.String(), stderr.String())
				}
				time.Sleep(50 * time.Millisecond)
			}
			for i := range 2 { // two connections over one forward
				resp, err := http.Get("http://127.0.0.1:" + port + "/")
				if err != nil {
					t.Fatalf("GET %d through port-forward: %v (stderr %q)", i, err, stderr.String())
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if !strings.HasPrefix(string(body), "hello from hello") {
					t.Errorf("GET %d through port-forward: %q", i, body)
				}
			}
		})
	}
}

// testAgentAuth: the agent's port takes only clients certified by the
// cluster CA that are the API server or cluster admins.
func testAgentAuth(t *testing.T, nt *nodeTest) {
	node, err := nt.clientset(t).CoreV1().Nodes().Get(context.Background(), nt.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	port := node.Status.DaemonEndpoints.KubeletEndpoint.Port
	if port == 0 || port == 10250 {
		t.Fatalf("node reports kubelet port %d: want the free port the test node picked", port)
	}
	url := fmt.Sprintf("https://127.0.0.1:%d/containerLogs/default/none/app", port)
	get := func(certs []tls.Certificate) (int, string) {
		c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
			InsecureSkipVerify: true, Certificates: certs, //nolint:gosec // the agent's certificate is self-signed
		}}}
		resp, err := c.Get(url)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get(nil); code != http.StatusUnauthorized {
		t.Errorf("no client certificate: %d %q, want 401", code, body)
	}
	ca, err := pki.LoadOrCreateCA(filepath.Join(nt.DataDir, "tls"), "wasmkube-ca")
	if err != nil {
		t.Fatal(err)
	}
	issue := func(name string, groups []string) tls.Certificate {
		certPEM, keyPEM, err := ca.LoadOrCreateClient(t.TempDir(), name, name, groups)
		if err != nil {
			t.Fatal(err)
		}
		c, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	if code, body := get([]tls.Certificate{issue("jane", []string{"developers"})}); code != http.StatusForbidden {
		t.Errorf("a cluster user who is no admin: %d %q, want 403", code, body)
	}
	if code, body := get([]tls.Certificate{issue("root", []string{"system:masters"})}); code != http.StatusNotFound || !strings.Contains(body, `pod "none" does not exist`) {
		t.Errorf("an admin asking for a missing pod: %d %q, want 404", code, body)
	}
	other, err := pki.LoadOrCreateCA(t.TempDir(), "other-ca")
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := other.LoadOrCreateClient(t.TempDir(), "root", "root", []string{"system:masters"})
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	if code, body := get([]tls.Certificate{foreign}); code == http.StatusOK || code == http.StatusNotFound {
		t.Errorf("a certificate of another CA was accepted: %d %q", code, body)
	}
}

// testAttach: attach streams a running container's output as it comes,
// over websockets and over SPDY.
func testAttach(t *testing.T, nt *nodeTest) {
	ns := nt.namespace(t, "attach")
	nt.apply(t, ns, `apiVersion: v1
kind: Pod
metadata:
  name: ticker
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: `+busyboxImage+`
    command: ["sh", "-c", `+strconv.Quote(tickerScript)+`]
`)
	nt.waitRunning(t, ns, "ticker")
	for _, proto := range kubectlProtocols {
		t.Run(proto.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			cmd := nt.command(ctx, []string{"-n", ns, "attach", "ticker"})
			cmd.Env = append(cmd.Env, proto.env...)
			var stdout, stderr syncbuf.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { cancel(); _ = cmd.Wait() }()
			for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
				out := stdout.String()
				if strings.Count(out, "tick ") >= 2 && strings.Contains(stderr.String(), "err ") {
					if strings.Contains(out, "early") {
						t.Errorf("attach replayed old output: %q", out)
					}
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("attach showed no ticks: stdout %q stderr %q", out, stderr.String())
				}
			}
		})
	}
}

// testStreamsDiscovery: the subresources are listed as upstream lists them.
func testStreamsDiscovery(t *testing.T, nt *nodeTest) {
	list, err := nt.clientset(t).Discovery().ServerResourcesForGroupVersion("v1")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"pods/log": "Pod [get]", "pods/exec": "PodExecOptions [create get]",
		"pods/attach": "PodAttachOptions [create get]", "pods/portforward": "PodPortForwardOptions [create get]",
	}
	for _, r := range list.APIResources {
		if w, ok := want[r.Name]; ok {
			if got := fmt.Sprintf("%s %v", r.Kind, r.Verbs); got != w {
				t.Errorf("%s: %s, want %s", r.Name, got, w)
			}
			delete(want, r.Name)
		}
	}
	if len(want) > 0 {
		t.Errorf("not in discovery: %v", want)
	}
}
