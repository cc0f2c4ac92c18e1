package e2e

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/wasmkube/wasmkube/internal/syncbuf"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/remotecommand"
)

// ttyShellPod is a shell on a terminal, driven by attached clients.
const ttyShellPod = `apiVersion: v1
kind: Pod
metadata:
  name: shell
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: sh
    image: ` + busyboxImage + `
    command: ["sh"]
    stdin: true
    tty: true
`

// stdinReaderPod echoes each line of its stdin, and says when stdin ends.
const stdinReaderPod = `apiVersion: v1
kind: Pod
metadata:
  name: reader
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: ` + busyboxImage + `
    command: ["sh", "-c", "while read l; do echo got:$l; done; echo stdin-closed"]
    stdin: true
`

// testAttachTTY: a `stdin: true, tty: true` shell is driven through the
// API server's attach with client-go's executors, over websockets (v5)
// and SPDY; the client's terminal size reaches the container's console.
func testAttachTTY(t *testing.T, nt *nodeTest) {
	ns := nt.namespace(t, "attachtty")
	nt.apply(t, ns, ttyShellPod)
	nt.waitRunning(t, ns, "shell")
	for _, proto := range []string{"websocket", "spdy"} {
		t.Run(proto, func(t *testing.T) {
			sess := nt.attachTTY(t, ns, "shell", "sh", proto)
			sess.send(t, "echo attached-$((6*7))\n", "attached-42\r\n")
			// The size the client sent is the console's.
			sess.send(t, "stty size\n", "27 91\r\n")
			sess.close()
		})
	}
	// Both clients have gone; the shell goes on.
	if p := nt.waitRunning(t, ns, "shell"); p.Status.ContainerStatuses[0].RestartCount != 0 {
		t.Errorf("the shell restarted: %+v", p.Status.ContainerStatuses[0])
	}
}

// testAttachStdin: `kubectl attach -i` sends the test's stdin to a
// `stdin: true` container, whose answers are in kubectl's output and in
// its log.
func testAttachStdin(t *testing.T, nt *nodeTest) {
	ns := nt.namespace(t, "attachin")
	nt.apply(t, ns, stdinReaderPod)
	nt.waitRunning(t, ns, "reader")
	for _, proto := range kubectlProtocols {
		t.Run(proto.name, func(t *testing.T) {
			nt.attachLine(t, ns, "reader", "line-"+proto.name, proto.env...)
			want := "got:line-" + proto.name
			nt.waitLogs(t, ns, want, "reader")
		})
	}
	// kubectl's stdin ended with each client; the container's did not.
	if out := nt.MustKubectl(t, "-n", ns, "logs", "reader"); strings.Contains(out, "stdin-closed") {
		t.Errorf("stdin closed without stdinOnce: %q", out)
	}
}

// testAttachStdinOnce: with stdinOnce, the container's stdin ends with the
// first attached client's, so a reader of stdin finishes; `kubectl run -i`
// makes such pods.
func testAttachStdinOnce(t *testing.T, nt *nodeTest) {
	ns := nt.namespace(t, "attachonce")
	nt.apply(t, ns, `apiVersion: v1
kind: Pod
metadata:
  name: once
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: `+busyboxImage+`
    command: ["sh", "-c", "while read l; do echo got:$l; done; echo stdin-closed"]
    stdin: true
    stdinOnce: true
`)
	nt.waitRunning(t, ns, "once")
	r := nt.kubectlEnv(t, nil, "a\nb\n", "-n", ns, "attach", "-i", "once")
	if r.ExitCode != 0 || !strings.Contains(r.Stdout, "got:b\nstdin-closed\n") {
		t.Errorf("kubectl attach -i of a stdinOnce container: %s", r)
	}
	nt.waitPhase(t, ns, "once", corev1.PodSucceeded)
	if out := nt.MustKubectl(t, "-n", ns, "logs", "once"); out != "got:a\ngot:b\nstdin-closed\n" {
		t.Errorf("logs of the stdinOnce container: %q", out)
	}

	// kubectl run -i: the pod is made with stdin and stdinOnce, attached
	// to, and removed once it is done.
	r = nt.kubectlEnv(t, nil, "typed\n", "-n", ns, "run", "asks", "-i", "--rm", "--restart=Never",
		"--image="+busyboxImage, "--command", "--", "sh", "-c", "read l; echo answer:$l")
	if r.ExitCode != 0 || !strings.Contains(r.Stdout, "answer:typed\n") {
		t.Errorf("kubectl run -i --rm: %s", r)
	}
}

// waitPhase waits until the pod reaches phase.
func (nt *nodeTest) waitPhase(t *testing.T, ns, name string, phase corev1.PodPhase) {
	t.Helper()
	for deadline := time.Now().Add(podTimeout); ; time.Sleep(250 * time.Millisecond) {
		r := nt.Kubectl(t, "-n", ns, "get", "pod", name, "-o", "jsonpath={.status.phase}")
		if r.ExitCode == 0 && r.Stdout == string(phase) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pod %s/%s did not reach %s: %s", ns, name, phase, r)
		}
	}
}

// ttySession is a client attached with a TTY through the API server.
type ttySession struct {
	stdin  *io.PipeWriter
	out    *syncbuf.Buffer
	done   chan error
	cancel context.CancelFunc
}

// attachTTY attaches to the container with client-go's executor for proto
// ("websocket" or "spdy"), with a 91x27 terminal.
func (nt *nodeTest) attachTTY(t *testing.T, ns, pod, container, proto string) *ttySession {
	t.Helper()
	cfg := nt.RESTConfig(t)
	req := nt.clientset(t).CoreV1().RESTClient().Post().Resource("pods").Namespace(ns).Name(pod).SubResource("attach").
		VersionedParams(&corev1.PodAttachOptions{Container: container, Stdin: true, Stdout: true, TTY: true}, scheme.ParameterCodec)
	var exec remotecommand.Executor
	var err error
	if proto == "spdy" {
		exec, err = remotecommand.NewSPDYExecutor(cfg, "POST", req.URL())
	} else {
		exec, err = remotecommand.NewWebSocketExecutor(cfg, "GET", req.URL().String())
	}
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	stdin, stdinW := io.Pipe()
	s := &ttySession{stdin: stdinW, out: &syncbuf.Buffer{}, done: make(chan error, 1), cancel: cancel}
	go func() {
		s.done <- exec.StreamWithContext(ctx, remotecommand.StreamOptions{Stdin: stdin, Stdout: s.out, Tty: true,
			TerminalSizeQueue: &fixedSize{size: remotecommand.TerminalSize{Width: 91, Height: 27}}})
	}()
	t.Cleanup(s.close)
	return s
}

// send types line until the terminal shows want. The attachment is in
// place some time after the stream opens; what is typed before it reaches
// the shell all the same, but its answer may come out before this client
// listens. Asking again until the answer shows covers both.
func (s *ttySession) send(t *testing.T, line, want string) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !strings.Contains(s.out.String(), want); time.Sleep(500 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q from the shell: %q", want, s.out.String())
		}
		select {
		case err := <-s.done:
			s.done <- err
			t.Fatalf("attach ended: %v (output %q)", err, s.out.String())
		default:
		}
		if _, err := io.WriteString(s.stdin, line); err != nil {
			t.Fatal(err)
		}
	}
}

func (s *ttySession) close() {
	s.cancel()
	s.stdin.Close()
	<-s.done
	s.done <- nil
}
