package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wasmkube/wasmkube/runtime/crilog"
	"github.com/wasmkube/wasmkube/runtime/wasm"
	"github.com/wasmkube/wasmkube/runtime/wasm/wasisock"
	"github.com/wasmkube/wasmkube/sandbox/wasmhost"
)

// ExitCodeStartError is the exit code of an instance that could not start
// (a module without _start, a bad environment entry), as containerd
// reports a process that could not be run.
const ExitCodeStartError = 128

// container is one wasm container of the pod and its current instance.
type container struct {
	h    *host
	spec wasmhost.ContainerSpec
	// module is nil for a module whose declared memory exceeds the
	// container's limit: every Start ends at once OOMKilled with noFit.
	module *wasm.Module
	noFit  string

	mu        sync.Mutex
	st        wasmhost.State
	done      chan struct{} // closed when the current instance ended
	exited    chan struct{} // closed, and replaced, at every exit
	cancel    context.CancelCauseFunc
	listeners []net.Listener // the running instance's, until closed
}

// create compiles the spec's module and records the container.
func (h *host) create(ctx context.Context, spec wasmhost.ContainerSpec) (wasmhost.State, error) {
	if err := validate(spec); err != nil {
		return wasmhost.State{}, err
	}
	h.mu.Lock()
	_, dup := h.containers[spec.ID]
	down := h.shuttingDown
	h.mu.Unlock()
	if down {
		return wasmhost.State{}, statusErr(http.StatusConflict, "sandbox is shutting down")
	}
	if dup {
		return wasmhost.State{}, statusErr(http.StatusConflict, "container %q already exists", spec.ID)
	}
	c := &container{h: h, spec: spec, exited: make(chan struct{})}
	c.st = wasmhost.State{ID: spec.ID, Labels: spec.Labels, Status: wasmhost.Created, Pid: h.pid, LogPath: spec.LogPath}
	m, err := h.module(ctx, spec)
	switch {
	case errors.Is(err, wasm.ErrMemoryLimit):
		c.noFit = err.Error()
	case err != nil:
		return wasmhost.State{}, err
	default:
		c.module = m
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, dup := h.containers[spec.ID]; dup {
		c.close(ctx)
		return wasmhost.State{}, statusErr(http.StatusConflict, "container %q already exists", spec.ID)
	}
	h.containers[spec.ID] = c
	return c.st, nil
}

// module is the spec's module with its memory limit: the preloaded one
// if it is of the spec's image, else compiled (or loaded from the cache).
func (h *host) module(ctx context.Context, spec wasmhost.ContainerSpec) (*wasm.Module, error) {
	start := time.Now()
	if m := h.takePreloaded(ctx, spec.Digest); m != nil {
		if err := m.LimitMemory(spec.MemoryLimit); err != nil {
			_ = m.Close(ctx)
			return nil, err
		}
		h.log.Info("module ready", "id", spec.ID, "digest", spec.Digest, "preloaded", true, "took", time.Since(start))
		return m, nil
	}
	bin, err := os.ReadFile(spec.Module)
	if err != nil {
		return nil, statusErr(http.StatusBadRequest, "read module: %v", err)
	}
	m, err := h.rt.Compile(ctx, spec.Digest, bin, wasm.WithMemoryLimit(spec.MemoryLimit))
	switch {
	case errors.Is(err, wasm.ErrMemoryLimit):
		return nil, err
	case err != nil:
		return nil, statusErr(http.StatusBadRequest, "container %q: %v", spec.ID, err)
	}
	shared, savingErr := m.SharedCode()
	h.log.Info("module ready", "id", spec.ID, "digest", spec.Digest, "fromCache", m.FromCache(),
		"sharedCodeBytes", shared, "took", time.Since(start))
	if savingErr != nil {
		// The module runs the same, only this sandbox takes more
		// memory (a private copy of the code, say).
		h.log.Warn("module memory not reduced", "id", spec.ID, "digest", spec.Digest, "err", savingErr)
	}
	// The module's bytes and the compiler's garbage are gone: give their
	// pages back, an idle sandbox should hold little more than the code.
	bin = nil
	debug.FreeOSMemory()
	return m, nil
}

func validate(spec wasmhost.ContainerSpec) error {
	bad := func(format string, args ...any) error {
		return statusErr(http.StatusBadRequest, "container %q: "+format, append([]any{spec.ID}, args...)...)
	}
	switch {
	case spec.ID == "" || strings.ContainsAny(spec.ID, "/?#"):
		return bad("id must be a non-empty path segment")
	case spec.Module == "":
		return bad("module is required")
	case spec.Digest == "":
		return bad("digest is required")
	case len(spec.Argv) == 0:
		return bad("argv is required (argv[0] included)")
	case spec.MemoryLimit < 0:
		return bad("memoryLimit %d is negative", spec.MemoryLimit)
	}
	for i, p := range spec.Ports {
		switch p.Protocol {
		case "", "TCP":
		case "UDP":
			return bad("ports[%d]: UDP ports are not supported for wasm containers yet", i)
		default:
			return bad("ports[%d]: protocol %q is not TCP or UDP", i, p.Protocol)
		}
		if p.Port < 1 || p.Port > 65535 {
			return bad("ports[%d]: port %d is out of range", i, p.Port)
		}
	}
	for i, p := range spec.Preopens {
		if p.HostPath == "" || p.GuestPath == "" {
			return bad("preopens[%d]: hostPath and guestPath are required", i)
		}
	}
	return nil
}

func (c *container) running() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.st.Status == wasmhost.Running
}

func (c *container) state() wasmhost.State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.st
}

// start runs a new instance; a Start of an exited container counts a
// restart.
func (c *container) start() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch c.st.Status {
	case wasmhost.Running:
		return statusErr(http.StatusConflict, "container %q is already running", c.spec.ID)
	case wasmhost.Exited:
		c.st.Restarts++
	}
	now := time.Now()
	c.st.StartedAt, c.st.FinishedAt = now, time.Time{}
	c.st.ExitCode, c.st.Reason, c.st.Message = 0, "", ""
	if c.module == nil {
		c.finishLocked(wasm.Result{Termination: wasm.OOMKilled, ExitCode: wasm.ExitCodeOOMKilled, Message: c.noFit})
		return nil
	}
	listeners, err := listen(c.spec.Ports)
	if err != nil {
		return statusErr(http.StatusInternalServerError, "container %q: %v", c.spec.ID, err)
	}
	table, err := c.sockets(listeners...)
	if err != nil {
		closeListeners(listeners)
		return statusErr(http.StatusInternalServerError, "container %q: %v", c.spec.ID, err)
	}
	var lg *crilog.Log
	if c.spec.LogPath != "" {
		if lg, err = crilog.Open(c.spec.LogPath, crilog.Rotation{MaxSize: c.spec.LogMaxSize, MaxFiles: c.spec.LogMaxFiles}); err != nil {
			closeListeners(listeners)
			_ = table.Close()
			return statusErr(http.StatusInternalServerError, "container %q: %v", c.spec.ID, err)
		}
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	c.st.Status = wasmhost.Running
	c.cancel, c.listeners, c.done = cancel, listeners, make(chan struct{})
	go c.run(ctx, table, lg, c.done)
	return nil
}

// run is the goroutine of one instance.
func (c *container) run(ctx context.Context, table *wasisock.Table, lg *crilog.Log, done chan struct{}) {
	var res wasm.Result
	defer func() {
		if p := recover(); p != nil {
			c.h.log.Error("instance panic", "id", c.spec.ID, "panic", p, "stack", string(debug.Stack()))
			res = wasm.Result{Termination: wasm.Trapped, ExitCode: wasm.ExitCodeTrapped, Message: fmt.Sprintf("sandbox panic: %v", p)}
		}
		c.closeListeners()
		if err := table.Close(); err != nil {
			c.h.log.Warn("close sockets", "id", c.spec.ID, "err", err)
		}
		c.mu.Lock()
		c.finishLocked(res)
		c.cancel(errors.New("instance ended"))
		c.mu.Unlock()
		close(done)
		c.h.log.Info("container exited", "id", c.spec.ID, "exitCode", res.ExitCode, "reason", res.Reason())
		c.h.poke()
		debug.FreeOSMemory()
	}()
	opts := append(c.runOptions(), wasm.WithArgv(c.spec.Argv...), wasm.WithSockets(table))
	if lg != nil {
		stdout, stderr := lg.Writer(crilog.Stdout), lg.Writer(crilog.Stderr)
		opts = append(opts, wasm.WithStdout(stdout), wasm.WithStderr(stderr))
		defer func() {
			_ = stdout.Flush()
			_ = stderr.Flush()
			_ = lg.Close()
		}()
	}
	r, err := c.module.Run(ctx, opts...)
	if err != nil {
		r = wasm.Result{Termination: wasm.Trapped, ExitCode: ExitCodeStartError, Message: err.Error()}
	}
	res = r
}

// sockets is an instance's socket table: its listeners, and outbound
// sockets resolving names with the pod's hosts file and resolv.conf.
func (c *container) sockets(listeners ...net.Listener) (*wasisock.Table, error) {
	var opts []wasisock.TableOption
	if c.spec.ResolvConf != "" {
		opts = append(opts, wasisock.WithResolvConf(c.spec.ResolvConf))
	}
	if c.spec.Hosts != "" {
		opts = append(opts, wasisock.WithHostsFile(c.spec.Hosts))
	}
	return wasisock.NewTableWithOptions(listeners, opts...)
}

// runOptions are the container's argv, environment and preopens.
func (c *container) runOptions() []wasm.RunOption {
	opts := []wasm.RunOption{wasm.WithEnv(c.spec.Env...)}
	for _, p := range c.spec.Preopens {
		opts = append(opts, wasm.WithPreopen(p.HostPath, p.GuestPath, p.ReadOnly))
	}
	return opts
}

// finishLocked records the instance's end. Called with mu held.
func (c *container) finishLocked(res wasm.Result) {
	c.st.Status = wasmhost.Exited
	c.st.FinishedAt = time.Now()
	c.st.ExitCode, c.st.Reason, c.st.Message = res.ExitCode, res.Reason(), res.Message
	close(c.exited)
	c.exited = make(chan struct{})
}

// wait blocks until the container is exited, or ctx ends.
func (c *container) wait(ctx context.Context) (wasmhost.State, error) {
	for {
		c.mu.Lock()
		st, exited := c.st, c.exited
		c.mu.Unlock()
		if st.Status == wasmhost.Exited {
			return st, nil
		}
		select {
		case <-exited:
		case <-ctx.Done():
			return wasmhost.State{}, ctx.Err()
		}
	}
}

// stop closes the listeners, gives the guest grace to end by itself, then
// kills it; it returns once the instance ended.
func (c *container) stop(grace time.Duration) error {
	c.mu.Lock()
	if c.st.Status != wasmhost.Running {
		c.mu.Unlock()
		return nil
	}
	done, cancel := c.done, c.cancel
	c.mu.Unlock()
	c.closeListeners()
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-done:
		return nil
	case <-t.C:
	}
	cancel(fmt.Errorf("killed after a grace period of %v", grace))
	// A cancelled guest ends at its next instruction or host call.
	select {
	case <-done:
		return nil
	case <-time.After(30 * time.Second):
		return statusErr(http.StatusInternalServerError, "container %q did not end 30s after it was killed", c.spec.ID)
	}
}

// closeListeners shuts the instance's listening sockets down, so that the
// guest's accept fails although it holds its own descriptors of them.
func (c *container) closeListeners() {
	c.mu.Lock()
	ls := c.listeners
	c.listeners = nil
	c.mu.Unlock()
	closeListeners(ls)
}

func closeListeners(ls []net.Listener) {
	for _, l := range ls {
		if sc, ok := l.(syscall.Conn); ok {
			if raw, err := sc.SyscallConn(); err == nil {
				_ = raw.Control(func(fd uintptr) { _ = unix.Shutdown(int(fd), unix.SHUT_RDWR) })
			}
		}
		_ = l.Close()
	}
}

// listen opens the ports' listeners in the process's network namespace.
func listen(ports []wasmhost.Port) ([]net.Listener, error) {
	var ls []net.Listener
	for _, p := range ports {
		l, err := net.Listen("tcp", fmt.Sprintf(":%d", p.Port))
		if err != nil {
			closeListeners(ls)
			return nil, fmt.Errorf("listen on port %d: %w", p.Port, err)
		}
		ls = append(ls, l)
	}
	return ls, nil
}

// close releases the compiled module; the container must not run.
func (c *container) close(ctx context.Context) {
	if c.module != nil {
		_ = c.module.Close(ctx)
	}
}
