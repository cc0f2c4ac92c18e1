package wasm

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/experimental"
	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
	"github.com/tetratelabs/wazero/experimental/sysfs"
	"github.com/tetratelabs/wazero/sys"
	"golang.org/x/sys/unix"

	"github.com/wasmkube/wasmkube/runtime/wasm/wasisock"
)

// Exit codes of the terminations that are not the guest's own exit, as a
// container runtime reports a process killed by that signal (128+n).
const (
	ExitCodeTrapped   = 128 + 6 // SIGABRT
	ExitCodeOOMKilled = 128 + 9 // SIGKILL, as the kernel's OOM killer
	ExitCodeKilled    = 128 + 9 // SIGKILL
)

// Termination is how a Run ended.
type Termination int

const (
	// Exited: the guest returned from _start or called proc_exit.
	Exited Termination = iota
	// Trapped: the guest trapped.
	Trapped
	// OOMKilled: the guest was refused memory over its limit, then failed.
	OOMKilled
	// Killed: the Run's context ended first.
	Killed
)

func (t Termination) String() string {
	switch t {
	case Exited:
		return "Exited"
	case Trapped:
		return "Trapped"
	case OOMKilled:
		return "OOMKilled"
	case Killed:
		return "Killed"
	}
	return fmt.Sprintf("Termination(%d)", int(t))
}

// Result is how a Run ended.
type Result struct {
	Termination Termination
	// ExitCode is the container's exit code: the guest's own when it
	// Exited, otherwise the ExitCode* constant of the Termination.
	ExitCode int
	// Message explains a termination other than Exited, e.g. the trap.
	Message string
}

// Reason is the Kubernetes reason of a terminated container state.
func (r Result) Reason() string {
	switch {
	case r.Termination == OOMKilled:
		return "OOMKilled"
	case r.Termination == Exited && r.ExitCode == 0:
		return "Completed"
	}
	return "Error"
}

// Preopen is a host directory the guest sees at GuestPath.
type Preopen struct {
	HostPath, GuestPath string
	ReadOnly            bool
}

type runConfig struct {
	argv     []string
	env      []string
	preopens []Preopen
	stdin    io.Reader
	stdout   io.Writer
	stderr   io.Writer
	sockets  *wasisock.Table
}

// RunOption configures one Run.
type RunOption func(*runConfig)

// WithArgv sets the guest's arguments, argv[0] included: a container's
// command followed by its args.
func WithArgv(argv ...string) RunOption {
	return func(c *runConfig) { c.argv = append(c.argv, argv...) }
}

// WithEnv adds KEY=value entries to the guest's environment.
func WithEnv(env ...string) RunOption {
	return func(c *runConfig) { c.env = append(c.env, env...) }
}

// WithPreopen makes the host directory hostPath the guest's guestPath; a
// readOnly one refuses every write. The guest sees nothing but its
// preopens.
func WithPreopen(hostPath, guestPath string, readOnly bool) RunOption {
	return func(c *runConfig) {
		c.preopens = append(c.preopens, Preopen{HostPath: hostPath, GuestPath: guestPath, ReadOnly: readOnly})
	}
}

// WithStdin, WithStdout and WithStderr connect the guest's standard
// streams; by default stdin is empty and output is discarded.
func WithStdin(r io.Reader) RunOption  { return func(c *runConfig) { c.stdin = r } }
func WithStdout(w io.Writer) RunOption { return func(c *runConfig) { c.stdout = w } }
func WithStderr(w io.Writer) RunOption { return func(c *runConfig) { c.stderr = w } }

// WithSockets gives the guest the listeners of t as fds 3, 4, ... (see
// wasisock); its preopened directories then follow the listeners. t must
// be new (no connection accepted yet) and serves this one Run; the caller
// closes it once the Run is over.
func WithSockets(t *wasisock.Table) RunOption { return func(c *runConfig) { c.sockets = t } }

// Run runs a new instance of the module to its end and tells how it ended.
// The error is for an instance that could not start (bad environment,
// missing imports, a missing _start); everything the guest does is in the
// Result. Cancelling ctx kills the guest.
func (m *Module) Run(ctx context.Context, opts ...RunOption) (Result, error) {
	var c runConfig
	for _, o := range opts {
		o(&c)
	}
	mc, release, err := m.moduleConfig(ctx, &c)
	if err != nil {
		return Result{}, err
	}
	defer release()
	if c.sockets != nil {
		// Every host call of the guest gets this context, and the socket
		// functions look the table up in it.
		ctx = wasisock.WithTable(ctx, c.sockets)
	}
	mem := &linearMemory{limit: uint64(m.memoryLimit), image: m.image}
	// Deferred before the instance's close, so run after it.
	defer mem.release()
	ctx = experimental.WithMemoryAllocator(ctx, mem)
	mod, err := m.rt.InstantiateModule(ctx, m.compiled, mc)
	if err != nil {
		return Result{}, fmt.Errorf("instantiate module of image %s: %w", m.digest, err)
	}
	defer mod.Close(context.WithoutCancel(ctx))
	// The data are in the instance's memory now: the pages read to copy
	// them leave this process (they stay in the page cache for the next
	// start).
	if m.dataView != nil {
		_ = unix.Madvise(m.dataView, unix.MADV_DONTNEED)
	}
	if m.image != nil {
		_ = unix.Madvise(m.image.view, unix.MADV_DONTNEED)
	}
	start := mod.ExportedFunction("_start")
	if start == nil {
		return Result{}, fmt.Errorf("module of image %s has no _start: not a WASI command", m.digest)
	}
	_, err = start.Call(ctx)
	return m.result(ctx, err, mem.refused.Load()), nil
}

// moduleConfig turns a Run's options into an instance's configuration.
// release closes the preopens' directories once the instance is gone.
func (m *Module) moduleConfig(ctx context.Context, c *runConfig) (_ wazero.ModuleConfig, release func(), err error) {
	mc := wazero.NewModuleConfig().
		// Anonymous, so that one Module runs any number of instances.
		WithName("").
		// _start is called by Run, so that a failure to instantiate is
		// told apart from the guest's own failures.
		WithStartFunctions().
		WithArgs(c.argv...).
		WithSysWalltime().
		WithSysNanotime().
		WithNanosleep(sleeper(ctx)).
		WithRandSource(rand.Reader)
	if c.stdin != nil {
		mc = mc.WithStdin(c.stdin)
	}
	if c.stdout != nil {
		mc = mc.WithStdout(c.stdout)
	}
	if c.stderr != nil {
		mc = mc.WithStderr(c.stderr)
	}
	for _, kv := range c.env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, nil, fmt.Errorf("environment entry %q is not KEY=value", kv)
		}
		mc = mc.WithEnv(k, v)
	}
	var opened []*confinedFS
	release = func() {
		for _, c := range opened {
			c.Close()
		}
	}
	fsc := wazero.NewFSConfig()
	if c.sockets != nil {
		// wazero numbers preopened directories from fd 3, where the
		// listeners are. Placeholders take the listeners' fds in wazero's
		// table so that the real directories come after them; wasisock
		// answers every call on those fds (fd_prestat_get says ENOTDIR, so
		// a guest's preopen scan skips them), so the guest never sees the
		// placeholders.
		for i := range c.sockets.Len() {
			fsc = fsc.(sysfs.FSConfig).WithSysFSMount(&sysfs.ReadFS{FS: placeholderFS{}},
				fmt.Sprintf("/.wasisock-listener-%d", wasisock.FirstListenerFD+i))
		}
	}
	for _, p := range c.preopens {
		cfs, err := newConfinedFS(p.HostPath)
		if err != nil {
			release()
			return nil, nil, err
		}
		opened = append(opened, cfs)
		var mount experimentalsys.FS = cfs
		if p.ReadOnly {
			mount = &sysfs.ReadFS{FS: cfs}
		}
		fsc = fsc.(sysfs.FSConfig).WithSysFSMount(mount, p.GuestPath)
	}
	return mc.WithFSConfig(fsc), release, nil
}

// placeholderFS holds a listener's place among wazero's preopens: an
// empty file system on which every operation fails (ENOSYS).
type placeholderFS struct {
	experimentalsys.UnimplementedFS
}

// sleeper is the guest's nanosleep: it wakes early when ctx ends, so that
// a guest asleep is killed at once rather than at the end of its sleep.
func sleeper(ctx context.Context) func(ns int64) {
	return func(ns int64) {
		t := time.NewTimer(time.Duration(ns))
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
		}
	}
}

// result classifies the end of _start.
func (m *Module) result(ctx context.Context, err error, memoryRefused bool) Result {
	var exit *sys.ExitError
	switch {
	case err == nil:
		return Result{Termination: Exited}
	case errors.As(err, &exit) && exit.ExitCode() != sys.ExitCodeContextCanceled && exit.ExitCode() != sys.ExitCodeDeadlineExceeded:
		code := int(exit.ExitCode())
		if code != 0 && memoryRefused {
			return m.oom(fmt.Sprintf("exit code %d", code))
		}
		return Result{Termination: Exited, ExitCode: code}
	case ctx.Err() != nil || exit != nil:
		return Result{Termination: Killed, ExitCode: ExitCodeKilled, Message: fmt.Sprintf("stopped: %v", context.Cause(ctx))}
	case memoryRefused:
		return m.oom(firstLine(err.Error()))
	}
	return Result{Termination: Trapped, ExitCode: ExitCodeTrapped, Message: err.Error()}
}

func (m *Module) oom(end string) Result {
	return Result{
		Termination: OOMKilled,
		ExitCode:    ExitCodeOOMKilled,
		Message:     fmt.Sprintf("linear memory limit of %d bytes reached, then %s", m.memoryLimit, end),
	}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
