package oci

import (
	"context"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/wasmkube/wasmkube/internal/syncbuf"
)

// client is one attachment running in the background.
type client struct {
	stdin  *io.PipeWriter
	out    *syncbuf.Buffer
	cancel context.CancelFunc
	done   chan error
}

func attachClient(t *testing.T, rt *Runtime, id string, resize <-chan TerminalSize) *client {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r, w := io.Pipe()
	c := &client{stdin: w, out: &syncbuf.Buffer{}, cancel: cancel, done: make(chan error, 1)}
	go func() {
		c.done <- rt.AttachStreams(ctx, id, AttachOptions{Stdin: r, Stdout: c.out, Stderr: c.out, Resize: resize})
	}()
	t.Cleanup(func() { cancel(); w.Close() })
	return c
}

// waitFor waits until what() contains want.
func waitFor(t *testing.T, what string, get func() string, want string) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if s := get(); strings.Contains(s, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never showed %q: %q", what, want, get())
		}
	}
}

func logText(path string) func() string {
	return func() string { b, _ := os.ReadFile(path); return string(b) }
}

// TestAttachStdin: clients' stdin reaches a container started with stdin,
// which stays open across attachments and across a new Runtime.
func TestAttachStdin(t *testing.T) {
	env := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	id := "wko-stdin"
	env.removeOnCleanup(t, id)
	if err := env.rt.Create(ctx, Spec{ID: id, Image: toolRef, Args: []string{"stdin"}, Stdin: true}); err != nil {
		t.Fatal(err)
	}
	if err := env.rt.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	st, _ := env.rt.Status(ctx, id)
	waitFor(t, "log", logText(st.LogPath), "stdout F no-tty")

	c1 := attachClient(t, env.rt, id, nil)
	// The attachment may not be in place before the first write returns;
	// the container's stdin buffers whatever comes first.
	if _, err := io.WriteString(c1.stdin, "one\n"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "first client", c1.out.String, "got:one\n")
	// The client's stdin ends; the container's does not.
	c1.stdin.Close()
	c1.cancel()
	<-c1.done

	c2 := attachClient(t, env.rt, id, nil)
	if _, err := io.WriteString(c2.stdin, "two\n"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "second client", c2.out.String, "got:two\n")
	if strings.Contains(c2.out.String(), "got:one") {
		t.Errorf("second client got output from before it attached: %q", c2.out.String())
	}
	log := logText(st.LogPath)()
	if strings.Contains(log, "stdin-closed") || !strings.Contains(log, "stdout F got:one") || !strings.Contains(log, "stdout F got:two") {
		t.Fatalf("log after two clients: %q", log)
	}
	c2.cancel()
	<-c2.done

	// The shim holds the container's stdin open across a new Runtime,
	// which writes into it again.
	env.rt.Close()
	rt2 := New(env.client, WithLogDir(env.rt.logDir), WithFIFODir(env.rt.fifoDir), WithCgroupParent(env.rt.cgroup))
	t.Cleanup(func() { rt2.Close() })
	if err := rt2.Attach(ctx, id); err != nil {
		t.Fatal(err)
	}
	c3 := attachClient(t, rt2, id, nil)
	if _, err := io.WriteString(c3.stdin, "three\n"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "client after the restart", c3.out.String, "got:three\n")
	if log := logText(st.LogPath)(); strings.Contains(log, "stdin-closed") || !strings.Contains(log, "stdout F got:three") {
		t.Fatalf("log after the restart: %q", log)
	}
	if err := rt2.Stop(ctx, id, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := <-c3.done; err != nil {
		t.Fatalf("attachment after the restart: %v", err)
	}
	if err := rt2.Remove(ctx, id); err != nil {
		t.Fatal(err)
	}
}

// TestAttachStdinOnce: the container's stdin closes when the first client
// that sent stdin detaches, so a reader of stdin ends.
func TestAttachStdinOnce(t *testing.T) {
	env := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	id := "wko-stdin-once"
	env.removeOnCleanup(t, id)
	if err := env.rt.Create(ctx, Spec{ID: id, Image: toolRef, Args: []string{"stdin", "exit"}, Stdin: true, StdinOnce: true}); err != nil {
		t.Fatal(err)
	}
	if err := env.rt.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	exitc, err := env.rt.Wait(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	// A client without stdin does not count.
	outOnly, stop := context.WithCancel(ctx)
	var first syncbuf.Buffer
	done := make(chan error, 1)
	go func() { done <- env.rt.AttachStreams(outOnly, id, AttachOptions{Stdout: &first}) }()
	stop()
	<-done

	c := attachClient(t, env.rt, id, nil)
	if _, err := io.WriteString(c.stdin, "only\n"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "client", c.out.String, "got:only\n")
	// Detaching without ending stdin is enough.
	c.cancel()
	<-c.done
	select {
	case es := <-exitc:
		if es.Err != nil || es.Code != 0 {
			t.Fatalf("exit: %+v", es)
		}
	case <-ctx.Done():
		t.Fatal("the container's stdin stayed open after the first client detached")
	}
	st, _ := env.rt.Status(ctx, id)
	if log := logText(st.LogPath)(); !strings.Contains(log, "stdout F got:only\n") || !strings.Contains(log, "stdout F stdin-closed\n") {
		t.Fatalf("log: %q", log)
	}
}

// TestAttachTTY: a TTY container's output is one terminal stream, logged as
// stdout, and an attached client's terminal size reaches it.
func TestAttachTTY(t *testing.T) {
	env := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	id := "wko-tty"
	env.removeOnCleanup(t, id)
	if err := env.rt.Create(ctx, Spec{ID: id, Image: toolRef, Args: []string{"stdin"}, Stdin: true, TTY: true}); err != nil {
		t.Fatal(err)
	}
	if err := env.rt.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	st, _ := env.rt.Status(ctx, id)
	waitFor(t, "log", logText(st.LogPath), "stdout F tty ")

	sizes := make(chan TerminalSize, 1)
	sizes <- TerminalSize{Width: 101, Height: 33}
	c := attachClient(t, env.rt, id, sizes)
	// The size may land after the first line is read: ask until it shows.
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(c.out.String(), "tty 101x33\r\n"); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("terminal size never reached the container: %q", c.out.String())
		}
		if _, err := io.WriteString(c.stdin, "size\n"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := io.WriteString(c.stdin, "hello\n"); err != nil {
		t.Fatal(err)
	}
	// The terminal echoes input and ends lines with CR LF.
	waitFor(t, "client", c.out.String, "got:hello\r\n")
	waitFor(t, "log", logText(st.LogPath), "got:hello")
	for _, r := range readLog(t, st.LogPath) {
		if r.stream != streamStdout {
			t.Errorf("log record on %s: %+v", r.stream, r)
		}
	}
	c.cancel()
	<-c.done

	// The terminal and its input survive a new Runtime.
	env.rt.Close()
	rt2 := New(env.client, WithLogDir(env.rt.logDir), WithFIFODir(env.rt.fifoDir), WithCgroupParent(env.rt.cgroup))
	t.Cleanup(func() { rt2.Close() })
	if err := rt2.Attach(ctx, id); err != nil {
		t.Fatal(err)
	}
	c2 := attachClient(t, rt2, id, nil)
	if _, err := io.WriteString(c2.stdin, "again\n"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "client after the restart", c2.out.String, "got:again\r\n")
	if err := rt2.Stop(ctx, id, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	<-c2.done
	if err := rt2.Remove(ctx, id); err != nil {
		t.Fatal(err)
	}
}
