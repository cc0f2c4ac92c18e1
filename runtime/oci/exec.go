package oci

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"syscall"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/cio"
	"github.com/containerd/containerd/errdefs"
)

// TerminalSize is a TTY's size in characters.
type TerminalSize struct {
	Width, Height uint16
}

// ExecOptions describe a process run inside a running container, as
// `kubectl exec` and exec probes and hooks do.
type ExecOptions struct {
	Cmd []string
	// Stdin, Stdout and Stderr are the process's streams; nil ones are
	// not connected. With TTY, everything comes out of Stdout.
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	TTY            bool
	// Resize, when not nil, delivers the client's terminal sizes.
	Resize <-chan TerminalSize
}

// Exec runs a process in the running container id, with the container's
// environment, working directory and user, and waits for it to end. It
// returns the process's exit code (128+n for a death by signal n). When ctx
// ends first, the process is killed and ctx's error returned.
func (r *Runtime) Exec(ctx context.Context, id string, o ExecOptions) (int, error) {
	if len(o.Cmd) == 0 {
		return -1, fmt.Errorf("oci: exec in %s: no command", id)
	}
	ctx = r.ns(ctx)
	wrap := func(err error) error { return fmt.Errorf("oci: exec %q in %s: %w", o.Cmd[0], id, err) }
	c, err := r.client.LoadContainer(ctx, id)
	if err != nil {
		return -1, wrap(err)
	}
	task, err := c.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		return -1, wrap(fmt.Errorf("container is not running: %w", errdefs.ErrFailedPrecondition))
	}
	if err != nil {
		return -1, wrap(err)
	}
	spec, err := c.Spec(ctx)
	if err != nil {
		return -1, wrap(err)
	}
	proc := *spec.Process
	proc.Args = o.Cmd
	proc.Terminal = o.TTY
	proc.ConsoleSize = nil

	stdout, stderr := o.Stdout, o.Stderr
	// The shim opens a FIFO for every stream the spec names; a stream
	// given without its sibling would leave it an empty path.
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil && !o.TTY {
		stderr = io.Discard
	}
	// The process sees the end of its stdin only once the shim closes
	// the pipe on request, after the client's stdin has ended.
	var stdin io.Reader
	started := make(chan containerd.Process, 1)
	defer close(started)
	if o.Stdin != nil {
		stdin = &stdinCloser{ctx: context.WithoutCancel(ctx), r: o.Stdin, started: started}
	}
	opts := []cio.Opt{cio.WithStreams(stdin, stdout, stderr), cio.WithFIFODir(r.fifoDir)}
	if o.TTY {
		opts = append(opts, cio.WithTerminal)
	}
	execID, err := newExecID()
	if err != nil {
		return -1, wrap(err)
	}
	// The process outlives a cancelled ctx long enough to be killed and
	// deleted, so its own calls use a context that is not cancelled.
	bg := context.WithoutCancel(ctx)
	p, err := task.Exec(bg, execID, &proc, cio.NewCreator(opts...))
	if err != nil {
		return -1, wrap(fmt.Errorf("create process: %w", err))
	}
	// A failed delete leaves nothing behind that outlives the task.
	defer p.Delete(bg, containerd.WithProcessKill) //nolint:errcheck
	exitc, err := p.Wait(bg)
	if err != nil {
		return -1, wrap(err)
	}
	if err := p.Start(bg); err != nil {
		return -1, wrap(fmt.Errorf("start process: %w", err))
	}
	started <- p
	if o.TTY && o.Resize != nil {
		done := make(chan struct{})
		defer close(done)
		go forwardResizes(bg, p, o.Resize, done)
	}
	select {
	case es := <-exitc:
		// All output is in the writers before the exit code is returned.
		if pio := p.IO(); pio != nil {
			pio.Wait()
		}
		code, _, err := es.Result()
		if err != nil {
			return -1, wrap(err)
		}
		return int(code), nil
	case <-ctx.Done():
		if err := p.Kill(bg, syscall.SIGKILL); err != nil && !errdefs.IsNotFound(err) {
			return -1, wrap(errors.Join(ctx.Err(), err))
		}
		select {
		case <-exitc:
		case <-time.After(10 * time.Second):
		}
		return -1, wrap(ctx.Err())
	}
}

func forwardResizes(ctx context.Context, p containerd.Process, sizes <-chan TerminalSize, done <-chan struct{}) {
	for {
		select {
		case <-done:
			return
		case s, ok := <-sizes:
			if !ok {
				return
			}
			// A resize racing the exit fails harmlessly.
			_ = p.Resize(ctx, uint32(s.Width), uint32(s.Height))
		}
	}
}

func newExecID() (string, error) {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("exec id: %w", err)
	}
	return "exec-" + hex.EncodeToString(b), nil
}

// stdinCloser passes a client's stdin to the process and, at its end, asks
// the shim to close the process's stdin, once the process has started.
type stdinCloser struct {
	ctx     context.Context
	r       io.Reader
	started <-chan containerd.Process
	closed  bool
}

func (s *stdinCloser) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err == io.EOF && !s.closed {
		s.closed = true
		go func() {
			proc, ok := <-s.started
			if ok {
				// A process that already exited has nothing to close.
				_ = proc.CloseIO(s.ctx, containerd.WithStdinCloser)
			}
		}()
	}
	return n, err
}
