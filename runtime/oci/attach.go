package oci

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/containerd/containerd/errdefs"
)

// AttachOptions are the streams of a client attached to a running
// container, as `kubectl attach` has them.
type AttachOptions struct {
	// Stdout and Stderr receive the container's output from now on; nil
	// ones are not connected.
	Stdout, Stderr io.Writer
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

// AttachStreams streams the running container's stdout and stderr to the
// client until ctx ends, the client's writer fails or the container's
// output ends. Only a container this Runtime copies the output of can be
// attached to.
func (r *Runtime) AttachStreams(ctx context.Context, id string, o AttachOptions) error {
	r.mu.Lock()
	tio := r.ios[id]
	r.mu.Unlock()
	if tio == nil || tio.lio == nil {
		return fmt.Errorf("oci: attach to %s: container is not running: %w", id, errdefs.ErrFailedPrecondition)
	}
	var attached []*attachedWriter
	defer func() {
		for _, a := range attached {
			tio.lio.stdout.fan.remove(a)
			tio.lio.stderr.fan.remove(a)
		}
	}()
	if o.Stdout != nil {
		attached = append(attached, tio.lio.stdout.fan.add(o.Stdout))
	}
	if o.Stderr != nil {
		attached = append(attached, tio.lio.stderr.fan.add(o.Stderr))
	}
	if len(attached) == 0 {
		return errors.New("oci: attach: no stream to attach")
	}
	// Any client stream that fails ends the attachment.
	gone := make(chan struct{})
	var goneOnce sync.Once
	stop := make(chan struct{})
	defer close(stop)
	for _, a := range attached {
		go func() {
			select {
			case <-a.gone:
				goneOnce.Do(func() { close(gone) })
			case <-stop:
			}
		}()
	}
	select {
	case <-ctx.Done():
	case <-tio.done:
	case <-gone:
	}
	return nil
}
