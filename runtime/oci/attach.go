package oci

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/errdefs"
)

// AttachOptions are the streams of a client attached to a running
// container, as `kubectl attach` has them. Whether there is a terminal is
// the container's own choice (Spec.TTY), as with the CRI plugin.
type AttachOptions struct {
	// Stdin is copied into the container's stdin when it has one; it is
	// read to its end otherwise.
	Stdin io.Reader
	// Stdout and Stderr receive the container's output from now on; nil
	// ones are not connected. A container with a TTY has all its output
	// in Stdout.
	Stdout, Stderr io.Writer
	// Resize, when not nil, delivers the client's terminal sizes to the
	// container's terminal.
	Resize <-chan TerminalSize
}

// stdinPipe is a container's stdin as the Runtime holds it: cio copies r
// into the FIFO, attached clients write into w. Writes are whole under the
// pipe's lock, so two clients' chunks never mix. The shim holds a writer of
// the FIFO too, so the process's stdin stays open when the Runtime goes
// away (and can be written again by the next one) until close asks the
// shim to let go.
type stdinPipe struct {
	r    *io.PipeReader
	w    *io.PipeWriter
	once bool // StdinOnce

	mu        sync.Mutex
	closed    bool
	closeTask func() // closes the shim's end; set once the task exists
}

func newStdinPipe(once bool) *stdinPipe {
	r, w := io.Pipe()
	return &stdinPipe{r: r, w: w, once: once}
}

func (p *stdinPipe) setCloser(f func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closeTask = f
}

// close closes the process's stdin for good.
func (p *stdinPipe) close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	f := p.closeTask
	p.mu.Unlock()
	// Everything written before is in the FIFO once Close returns: the
	// pipe hands each write over whole.
	p.w.Close()
	if f != nil {
		f()
	}
}

// release ends the Runtime's copy into the FIFO and leaves the process's
// stdin open.
func (p *stdinPipe) release() { p.w.Close() }

// stdinCloser closes the shim's end of the task's stdin FIFO and records
// that it did, so that a later Runtime does not open a FIFO no one reads.
func (r *Runtime) stdinCloser(c containerd.Container, t containerd.Task) func() {
	var fifo string
	if tio := t.IO(); tio != nil {
		fifo = tio.Config().Stdin
	}
	return func() {
		ctx, cancel := context.WithTimeout(r.ns(context.Background()), 10*time.Second)
		defer cancel()
		// A task that ended or went has nothing left to close.
		_ = t.CloseIO(ctx, containerd.WithStdinCloser)
		if fifo != "" {
			_, _ = c.SetLabels(ctx, map[string]string{labelStdinClosed: fifo})
		}
	}
}

// fanout copies a stream's output to attached clients beside the log. A
// client whose write fails is dropped; the container's output never waits
// for a client that went away.
type fanout struct {
	mu      sync.Mutex
	writers map[*attachedWriter]struct{}
}

type attachedWriter struct {
	w    io.Writer
	gone chan struct{}
	once sync.Once
}

func (a *attachedWriter) drop() { a.once.Do(func() { close(a.gone) }) }

func (f *fanout) add(w io.Writer) *attachedWriter {
	a := &attachedWriter{w: w, gone: make(chan struct{})}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.writers == nil {
		f.writers = map[*attachedWriter]struct{}{}
	}
	f.writers[a] = struct{}{}
	return a
}

func (f *fanout) remove(a *attachedWriter) {
	f.mu.Lock()
	delete(f.writers, a)
	f.mu.Unlock()
}

func (f *fanout) write(p []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for a := range f.writers {
		if _, err := a.w.Write(p); err != nil {
			delete(f.writers, a)
			a.drop()
		}
	}
}

// AttachStreams connects a client to the running container until ctx ends,
// the client's output fails, the container's output ends or, for a client
// with only stdin, its stdin ends. Output is streamed from now on; stdin
// goes into the container's held stdin; with StdinOnce (and no TTY) the
// container's stdin is closed when the first client that sent stdin has
// gone, as the CRI plugin does. Only a container this Runtime copies the
// output of can be attached to.
func (r *Runtime) AttachStreams(ctx context.Context, id string, o AttachOptions) error {
	r.mu.Lock()
	tio := r.ios[id]
	r.mu.Unlock()
	if tio == nil || tio.lio == nil {
		return fmt.Errorf("oci: attach to %s: container is not running: %w", id, errdefs.ErrFailedPrecondition)
	}
	lio := tio.lio
	var attached []*attachedWriter
	defer func() {
		for _, a := range attached {
			lio.stdout.fan.remove(a)
			lio.stderr.fan.remove(a)
		}
	}()
	if o.Stdout != nil {
		attached = append(attached, lio.stdout.fan.add(o.Stdout))
	}
	if o.Stderr != nil && !lio.tty {
		attached = append(attached, lio.stderr.fan.add(o.Stderr))
	}
	if len(attached) == 0 && o.Stdin == nil {
		return errors.New("oci: attach: no stream to attach")
	}
	// Any client stream that fails ends the attachment.
	gone := make(chan struct{})
	var goneOnce sync.Once
	end := func() { goneOnce.Do(func() { close(gone) }) }
	stop := make(chan struct{})
	defer close(stop)
	for _, a := range attached {
		go func() {
			select {
			case <-a.gone:
				end()
			case <-stop:
			}
		}()
	}
	if o.Stdin != nil {
		stdin := lio.stdin
		if stdin != nil && stdin.once && !lio.tty {
			// Upstream closes a StdinOnce stdin when the client detaches,
			// whether its stdin ended first or not.
			defer stdin.close()
		}
		go func() {
			if stdin != nil {
				_, _ = io.Copy(stdin.w, o.Stdin)
				if stdin.once && !lio.tty {
					stdin.close()
				}
			} else {
				// Reading the client's side to its end notices a client
				// that leaves.
				_, _ = io.Copy(io.Discard, o.Stdin)
			}
			if len(attached) == 0 {
				end()
			}
		}()
	}
	if o.Resize != nil && lio.tty {
		bg := context.WithoutCancel(r.ns(ctx))
		if task, err := r.loadTask(bg, id); err == nil {
			go forwardResizes(bg, task, o.Resize, stop)
		}
	}
	select {
	case <-ctx.Done():
	case <-tio.done:
	case <-gone:
	}
	return nil
}

// loadTask returns the container's task without touching its IO.
func (r *Runtime) loadTask(ctx context.Context, id string) (containerd.Task, error) {
	c, err := r.client.LoadContainer(ctx, id)
	if err != nil {
		return nil, err
	}
	return c.Task(ctx, nil)
}
