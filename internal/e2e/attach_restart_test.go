package e2e

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/wasmkube/wasmkube/internal/syncbuf"
)

// TestAgentKill9Attach: a container's stdin and terminal outlive an agent
// killed with SIGKILL: the shim holds them, and the next agent writes
// into them again, so a `stdin: true` reader and a `tty: true` shell keep
// answering attached clients without restarting.
func TestAgentKill9Attach(t *testing.T) {
	n, nt := startSplitTest(t, SplitNodeOptions{})
	ns := nt.namespace(t, "kill9attach")
	nt.apply(t, ns, ttyShellPod+"---\n"+stdinReaderPod)
	nt.waitRunning(t, ns, "shell")
	nt.waitRunning(t, ns, "reader")
	sess := nt.attachTTY(t, ns, "shell", "sh", "websocket")
	sess.send(t, "echo before-$((1+1))\n", "before-2\r\n")
	sess.close()
	nt.attachLine(t, ns, "reader", "before")

	n.KillAgent(t)
	n.StartAgent(t)
	nt.waitRunning(t, ns, "shell")
	nt.waitRunning(t, ns, "reader")

	// The agent's server may take a moment to take attachments again.
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(time.Second) {
		r := nt.Kubectl(t, "-n", ns, "exec", "reader", "--", "true")
		if r.ExitCode == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the agent serves no exec after its restart: %s", r)
		}
	}
	sess = nt.attachTTY(t, ns, "shell", "sh", "spdy")
	sess.send(t, "echo after-$((1+2))\n", "after-3\r\n")
	sess.close()
	nt.attachLine(t, ns, "reader", "after")
	if out := nt.MustKubectl(t, "-n", ns, "logs", "reader"); strings.Contains(out, "stdin-closed") {
		t.Errorf("the reader's stdin closed: %q", out)
	}
	for _, pod := range []string{"shell", "reader"} {
		p := nt.waitRunning(t, ns, pod)
		if rc := p.Status.ContainerStatuses[0].RestartCount; rc != 0 {
			t.Errorf("pod %s restarted %d times", pod, rc)
		}
	}
}

// attachLine sends word through `kubectl attach -i` (run with env added
// to its environment) until the container answers got:<word>.
func (nt *nodeTest) attachLine(t *testing.T, ns, pod, word string, env ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := nt.command(ctx, []string{"-n", ns, "attach", "-i", pod})
	cmd.Env = append(cmd.Env, env...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr syncbuf.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); _ = cmd.Wait() }()
	for deadline := time.Now().Add(time.Minute); !strings.Contains(stdout.String(), "got:"+word); time.Sleep(500 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("kubectl attach -i %s printed no got:%s: stdout %q stderr %q", pod, word, stdout.String(), stderr.String())
		}
		if _, err := io.WriteString(stdin, word+"\n"); err != nil {
			t.Fatalf("write to kubectl: %v (stderr %q)", err, stderr.String())
		}
	}
}
