package oci

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/api/services/tasks/v1"
	"github.com/containerd/containerd/cio"
	"github.com/containerd/containerd/errdefs"

	"github.com/wasmkube/wasmkube/runtime/crilog"
)

// Status is where a container is in its life.
type Status string

const (
	StatusCreated Status = "created" // made, never started (or start failed)
	StatusRunning Status = "running"
	StatusExited  Status = "exited"
	StatusUnknown Status = "unknown"
)

// State is what the agent reports for a container.
type State struct {
	ID         string
	Status     Status
	Pid        uint32
	ExitCode   int // valid when Exited; 128+n for a death by signal n
	StartedAt  time.Time
	FinishedAt time.Time
	OOMKilled  bool     // the kernel's OOM killer killed a process of the container
	LogPath    string   // where its stdout and stderr go
	Warnings   []string // limits that could not be applied
}

// ExitStatus is a task's end, as Wait delivers it.
type ExitStatus struct {
	Code     int
	ExitedAt time.Time
	Err      error // waiting failed; Code is meaningless then
}

// taskIO is the log side of a started task: cio's FIFO copiers and the CRI
// writers they feed. done closes once both streams have ended and the last
// lines are in the file.
type taskIO struct {
	io   cio.IO
	lio  *logIO
	done chan struct{}
}

// Start starts the container's process, its stdout and stderr copied to the
// container's log in the CRI format. A task left from an earlier run that
// has exited is deleted first, so Start also restarts a container in place.
func (r *Runtime) Start(ctx context.Context, id string) error {
	ctx = r.ns(ctx)
	wrap := func(err error) error { return fmt.Errorf("oci: start %s: %w", id, err) }
	c, err := r.client.LoadContainer(ctx, id)
	if err != nil {
		return wrap(err)
	}
	labels, err := c.Labels(ctx)
	if err != nil {
		return wrap(err)
	}
	if old, err := c.Task(ctx, nil); err == nil {
		st, err := old.Status(ctx)
		if err != nil {
			return wrap(err)
		}
		if st.Status != containerd.Stopped {
			return wrap(fmt.Errorf("task is %s: %w", st.Status, errdefs.ErrAlreadyExists))
		}
		if err := r.deleteTask(ctx, id, old); err != nil {
			return wrap(err)
		}
	} else if !errdefs.IsNotFound(err) {
		return wrap(err)
	}

	lio, err := r.openLogIO(labels)
	if err != nil {
		return wrap(err)
	}
	task, err := c.NewTask(ctx, cio.NewCreator(lio.opts(r.fifoDir)...))
	if err != nil {
		lio.abort()
		return wrap(fmt.Errorf("create task: %w", err))
	}
	if lio.stdin != nil {
		lio.stdin.setCloser(r.stdinCloser(c, task))
	}
	r.track(id, lio.follow(task.IO()))

	if err := task.Start(ctx); err != nil {
		// Delete cancels and closes the task's IO, which ends the copiers.
		if _, derr := task.Delete(ctx, containerd.WithProcessKill); derr != nil && !errdefs.IsNotFound(derr) {
			err = errors.Join(err, fmt.Errorf("delete failed task: %w", derr))
		}
		r.closeIO(id)
		return wrap(err)
	}
	now := time.Now().UTC().Format(time.RFC3339Nano)
	if _, err := c.SetLabels(ctx, map[string]string{labelStartedAt: now}); err != nil {
		return wrap(fmt.Errorf("record start time: %w", err))
	}
	return nil
}

// logIO is a container's log file with the writers cio's copiers feed,
// and the stdin the Runtime holds for it.
type logIO struct {
	log            *crilog.Log
	stdout, stderr *streamWriter
	stdin          *stdinPipe // nil: the process has no stdin, or it is closed
	tty            bool       // one output stream, from a terminal
}

// openLogIO opens the log of the container whose labels are given, with
// the stdin and terminal that Create recorded for it.
func (r *Runtime) openLogIO(labels map[string]string) (*logIO, error) {
	logPath := labels[labelLogPath]
	if logPath == "" {
		return nil, errors.New("container has no log path label: not created by this package")
	}
	lg, err := crilog.Open(logPath, r.rotation)
	if err != nil {
		return nil, err
	}
	l := &logIO{
		log:    lg,
		stdout: &streamWriter{log: lg.Writer(streamStdout)},
		stderr: &streamWriter{log: lg.Writer(streamStderr)},
		tty:    labels[labelTTY] == "true",
	}
	if v := labels[labelStdin]; v != "" {
		l.stdin = newStdinPipe(v == "once")
	}
	return l, nil
}

func (l *logIO) opts(fifoDir string) []cio.Opt {
	// Untyped nils: cio leaves a nil stream's FIFO out.
	var stdin io.Reader
	if l.stdin != nil {
		stdin = l.stdin.r
	}
	var stderr io.Writer = l.stderr
	if l.tty {
		stderr = nil
	}
	opts := []cio.Opt{cio.WithStreams(stdin, l.stdout, stderr), cio.WithFIFODir(fifoDir)}
	if l.tty {
		opts = append(opts, cio.WithTerminal)
	}
	return opts
}

// abort closes the log when no copier was started.
func (l *logIO) abort() {
	l.releaseStdin()
	l.log.Close()
}

// releaseStdin ends the copy into the stdin FIFO; the process's stdin
// stays open (the shim holds it).
func (l *logIO) releaseStdin() {
	if l.stdin != nil {
		l.stdin.release()
	}
}

// follow finishes the log once the task's streams end: their unterminated
// last lines are written and the file closed.
func (l *logIO) follow(io cio.IO) *taskIO {
	tio := &taskIO{io: io, lio: l, done: make(chan struct{})}
	go func() {
		defer close(tio.done)
		io.Wait()
		l.stdout.flush()
		l.stderr.flush()
		l.log.Close()
	}()
	return tio
}

func (r *Runtime) track(id string, tio *taskIO) {
	r.mu.Lock()
	r.ios[id] = tio
	r.mu.Unlock()
}

// Attach resumes copying the output of a running container that another
// Runtime started (the agent before a restart) into its log. The shim keeps
// the FIFOs open while nobody reads, so output written meanwhile waits in
// the pipe (up to its 64 KiB) and is logged once attached; a container that
// wrote more than that was blocked until now. A container without a task,
// or whose output this Runtime already copies, is left as it is.
func (r *Runtime) Attach(ctx context.Context, id string) error {
	ctx = r.ns(ctx)
	wrap := func(err error) error { return fmt.Errorf("oci: attach %s: %w", id, err) }
	if r.logsDone(id) != nil {
		return nil
	}
	c, err := r.client.LoadContainer(ctx, id)
	if err != nil {
		return wrap(err)
	}
	labels, err := c.Labels(ctx)
	if err != nil {
		return wrap(err)
	}
	lio, err := r.openLogIO(labels)
	if err != nil {
		return wrap(err)
	}
	if lio.stdin != nil {
		// The shim keeps the stdin FIFO open, for this Runtime to write
		// into again, unless a StdinOnce close let it go.
		resp, err := r.client.TaskService().Get(ctx, &tasks.GetRequest{ContainerID: id})
		if closed := labels[labelStdinClosed]; err == nil && resp.Process != nil && closed != "" && resp.Process.Stdin == closed {
			lio.stdin = nil
		}
	}
	task, err := c.Task(ctx, cio.NewAttach(lio.opts(r.fifoDir)...))
	if errdefs.IsNotFound(err) {
		lio.abort()
		return nil
	}
	if err != nil {
		lio.abort()
		return wrap(err)
	}
	if task.IO() == nil {
		lio.abort()
		return nil
	}
	if lio.stdin != nil {
		lio.stdin.setCloser(r.stdinCloser(c, task))
	}
	r.track(id, lio.follow(task.IO()))
	return nil
}

// deleteTask deletes the task, killing it if it runs, and then its FIFOs:
// through its copiers when this Runtime has them, else by path, for a task
// that an earlier Runtime started.
func (r *Runtime) deleteTask(ctx context.Context, id string, t containerd.Task) error {
	var fifos []string
	if r.logsDone(id) == nil {
		resp, err := r.client.TaskService().Get(ctx, &tasks.GetRequest{ContainerID: id})
		if err == nil && resp.Process != nil {
			fifos = []string{resp.Process.Stdin, resp.Process.Stdout, resp.Process.Stderr}
		}
	}
	if _, err := t.Delete(ctx, containerd.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("delete task: %w", err)
	}
	r.closeIO(id)
	dirs := map[string]bool{}
	for _, f := range fifos {
		if f == "" {
			continue
		}
		if fi, err := os.Lstat(f); err == nil && fi.Mode()&os.ModeNamedPipe != 0 {
			os.Remove(f)
			dirs[filepath.Dir(f)] = true
		}
	}
	for d := range dirs {
		// Only if empty: the directory is cio's per-task one, but a
		// misconfigured path must not take anything else with it.
		os.Remove(d)
	}
	return nil
}

// closeIO ends the log copiers of id, if this Runtime started them, and
// removes their FIFOs.
func (r *Runtime) closeIO(id string) {
	r.mu.Lock()
	tio := r.ios[id]
	delete(r.ios, id)
	r.mu.Unlock()
	if tio == nil {
		return
	}
	tio.lio.releaseStdin()
	tio.io.Cancel()
	<-tio.done
	tio.io.Close()
}

// logsDone returns a channel closed when the log copiers of id have
// finished, or nil when this Runtime does not copy them.
func (r *Runtime) logsDone(id string) <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	if tio := r.ios[id]; tio != nil {
		return tio.done
	}
	return nil
}

// Status reports the container's state from its containerd task, and from
// the memory cgroup's OOM kill counter, which stays readable until the
// exited task is deleted.
func (r *Runtime) Status(ctx context.Context, id string) (State, error) {
	ctx = r.ns(ctx)
	wrap := func(err error) error { return fmt.Errorf("oci: status %s: %w", id, err) }
	c, err := r.client.LoadContainer(ctx, id)
	if err != nil {
		return State{}, wrap(err)
	}
	labels, err := c.Labels(ctx)
	if err != nil {
		return State{}, wrap(err)
	}
	st := State{ID: id, LogPath: labels[labelLogPath]}
	if w := labels[labelWarnings]; w != "" {
		st.Warnings = strings.Split(w, "; ")
	}
	if ts := labels[labelStartedAt]; ts != "" {
		st.StartedAt, _ = time.Parse(time.RFC3339Nano, ts)
	}
	task, err := c.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		st.Status = StatusCreated
		if !st.StartedAt.IsZero() {
			// Started once, and its task deleted by someone else since:
			// the exit code is gone.
			st.Status = StatusUnknown
		}
		return st, nil
	}
	if err != nil {
		return State{}, wrap(err)
	}
	st.Pid = task.Pid()
	ts, err := task.Status(ctx)
	if err != nil {
		return State{}, wrap(err)
	}
	switch ts.Status {
	case containerd.Created:
		st.Status = StatusCreated
	case containerd.Running, containerd.Paused, containerd.Pausing:
		st.Status = StatusRunning
	case containerd.Stopped:
		st.Status = StatusExited
		st.ExitCode = int(ts.ExitStatus)
		st.FinishedAt = ts.ExitTime
		// Only an exit is reported as OOMKilled, so a running container's
		// status costs no spec read.
		if spec, err := c.Spec(ctx); err == nil && spec.Linux != nil {
			if ctl, err := r.controllers(); err == nil {
				st.OOMKilled = ctl.oomKills(spec.Linux.CgroupsPath) > 0
			}
		}
	default:
		st.Status = StatusUnknown
	}
	return st, nil
}

// Wait returns a channel that receives the task's exit status once. When
// this Runtime copies the task's logs, the status is sent only after the
// last lines are written, so a caller that saw the exit can read them all.
func (r *Runtime) Wait(ctx context.Context, id string) (<-chan ExitStatus, error) {
	ctx = r.ns(ctx)
	wrap := func(err error) error { return fmt.Errorf("oci: wait %s: %w", id, err) }
	c, err := r.client.LoadContainer(ctx, id)
	if err != nil {
		return nil, wrap(err)
	}
	task, err := c.Task(ctx, nil)
	if err != nil {
		return nil, wrap(err)
	}
	exitc, err := task.Wait(ctx)
	if err != nil {
		return nil, wrap(err)
	}
	logs := r.logsDone(id)
	out := make(chan ExitStatus, 1)
	go func() {
		defer close(out)
		es := <-exitc
		code, at, err := es.Result()
		if logs != nil && err == nil {
			select {
			case <-logs:
			case <-ctx.Done():
			}
		}
		out <- ExitStatus{Code: int(code), ExitedAt: at, Err: err}
	}()
	return out, nil
}

// Stop sends SIGTERM and, if the task still runs after grace, SIGKILL. It
// returns once the task has exited; a container that is not running is
// left as it is.
func (r *Runtime) Stop(ctx context.Context, id string, grace time.Duration) error {
	ctx = r.ns(ctx)
	wrap := func(err error) error { return fmt.Errorf("oci: stop %s: %w", id, err) }
	c, err := r.client.LoadContainer(ctx, id)
	if err != nil {
		return wrap(err)
	}
	task, err := c.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return wrap(err)
	}
	st, err := task.Status(ctx)
	if err != nil {
		return wrap(err)
	}
	if st.Status == containerd.Stopped {
		return nil
	}
	// Wait before Kill, or a fast exit could be missed.
	exitc, err := task.Wait(ctx)
	if err != nil {
		return wrap(err)
	}
	if err := task.Kill(ctx, syscall.SIGTERM); err != nil && !errdefs.IsNotFound(err) {
		return wrap(fmt.Errorf("SIGTERM: %w", err))
	}
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-exitc:
		return nil
	case <-ctx.Done():
		return wrap(ctx.Err())
	case <-timer.C:
	}
	// All processes, not only the init: a child that ignored SIGTERM would
	// otherwise keep the container's cgroup and stdio alive.
	if err := task.Kill(ctx, syscall.SIGKILL, containerd.WithKillAll); err != nil && !errdefs.IsNotFound(err) {
		return wrap(fmt.Errorf("SIGKILL: %w", err))
	}
	select {
	case <-exitc:
		return nil
	case <-ctx.Done():
		return wrap(ctx.Err())
	}
}
