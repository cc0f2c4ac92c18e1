package wasmpod

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/containerd/containerd/errdefs"

	"github.com/wasmkube/wasmkube/runtime/images"
	"github.com/wasmkube/wasmkube/runtime/oci"
	"github.com/wasmkube/wasmkube/sandbox/cgroups"
	"github.com/wasmkube/wasmkube/sandbox/wasmhost"
)

// RuntimeClass is the runtimeClassName that asks for the wasm runtime
// whatever the image's entrypoint is.
const RuntimeClass = "wasm"

// ErrNotWasm is returned (wrapped) when a pod asks for the wasm runtime
// and the container's entrypoint is not a wasm module.
var ErrNotWasm = errors.New("entrypoint is not a WebAssembly module")

// Module is the wasm module an image's entrypoint names, found and
// extracted by the image store: its file, the image digest that keys the
// compilation cache, and the argv and environment resolved against the
// image.
type Module = images.WasmModule

// ModuleFinder finds the wasm module an image's entrypoint names; ok is
// false, without error, for an entrypoint that is not wasm.
type ModuleFinder interface {
	WasmModule(ctx context.Context, image string, command, args []string) (m Module, ok bool, err error)
}

// Config wires the runtime to the node.
type Config struct {
	// Dir holds the sandboxes' sockets and logs and the compilation
	// cache: DIR/wasm.
	Dir string
	// SandboxBinary is the wasmkube-sandbox executable.
	SandboxBinary string
	Modules       ModuleFinder
	// LogRotation bounds each container's log, as for OCI containers.
	LogRotation oci.LogRotation
	// WarmSandboxes is how many sandbox processes the runtime keeps
	// started ahead of their pods, each with the module of one of the
	// images started last already loaded; 0 keeps none.
	WarmSandboxes int
	Log           *slog.Logger
}

// Runtime runs wasm containers, one sandbox process per pod.
type Runtime struct {
	cfg      Config
	compiler *compiler
	// hierarchies are the host's cgroup hierarchies, for the sandboxes'
	// cgroups.
	hierarchies []cgroups.Hierarchy
	pool        *warmPool // nil without WarmSandboxes

	mu        sync.Mutex
	sandboxes map[string]*sandboxProc // by shim group: the pod uid
	owner     map[string]string       // container id → shim group
	claimed   map[string]Module       // container id → module, from Claims to Create
}

// New returns a Runtime and adopts the sandbox processes an earlier agent
// left running.
func New(ctx context.Context, cfg Config) (*Runtime, error) {
	if cfg.Dir == "" || cfg.SandboxBinary == "" || cfg.Modules == nil {
		return nil, errors.New("wasmpod: a directory, the sandbox binary and a module finder are required")
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if _, err := os.Stat(cfg.SandboxBinary); err != nil {
		return nil, fmt.Errorf("wasmpod: sandbox binary: %w", err)
	}
	for _, d := range []string{sandboxesDir(cfg.Dir), cacheDir(cfg.Dir)} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("wasmpod: %w", err)
		}
	}
	hs, err := cgroups.Hierarchies()
	if err != nil {
		return nil, fmt.Errorf("wasmpod: %w", err)
	}
	r := &Runtime{
		cfg:         cfg,
		hierarchies: hs,
		compiler:    newCompiler(cfg.SandboxBinary, cacheDir(cfg.Dir)),
		sandboxes:   map[string]*sandboxProc{},
		owner:       map[string]string{},
		claimed:     map[string]Module{},
	}
	if err := r.adopt(ctx); err != nil {
		return nil, err
	}
	if cfg.WarmSandboxes > 0 {
		r.pool = newWarmPool(cfg.WarmSandboxes, r.launcher(), cfg.Log)
	}
	return r, nil
}

// Close ends the sandboxes kept warm. The pods' sandboxes keep running:
// they outlive the agent.
func (r *Runtime) Close() { r.pool.close() }

func sandboxesDir(dir string) string { return filepath.Join(dir, "sandboxes") }
func cacheDir(dir string) string     { return filepath.Join(dir, "cache") }

// ForgetImage removes the code compiled for an image that is gone.
func (r *Runtime) ForgetImage(digest string) error {
	r.pool.forget(digest)
	if err := r.compiler.forget(digest); err != nil {
		return fmt.Errorf("wasmpod: compiled code of image %s: %w", digest, err)
	}
	return nil
}

// Claims reports whether s is a wasm container, and remembers its module
// for Create.
func (r *Runtime) Claims(ctx context.Context, s oci.Spec) (bool, error) {
	m, ok, err := r.cfg.Modules.WasmModule(ctx, s.Image, s.Command, s.Args)
	if err != nil {
		return false, fmt.Errorf("wasmpod: inspect image %s: %w", s.Image, err)
	}
	if !ok {
		if s.RuntimeClass == RuntimeClass {
			return false, fmt.Errorf("runtimeClassName %q: image %s: %w", RuntimeClass, s.Image, ErrNotWasm)
		}
		return false, nil
	}
	r.mu.Lock()
	r.claimed[s.ID] = m
	r.mu.Unlock()
	return true, nil
}

// Has reports whether id is a wasm container this runtime made or adopted.
func (r *Runtime) Has(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.owner[id]
	return ok
}

// Create makes the container in its pod's sandbox process, starting the
// process for the pod's first wasm container. Claims must have accepted s.
func (r *Runtime) Create(ctx context.Context, s oci.Spec) error {
	r.mu.Lock()
	m, ok := r.claimed[s.ID]
	delete(r.claimed, s.ID)
	_, exists := r.owner[s.ID]
	r.mu.Unlock()
	if exists {
		return fmt.Errorf("wasmpod: create %s: %w", s.ID, errdefs.ErrAlreadyExists)
	}
	if !ok {
		var err error
		if m, ok, err = r.cfg.Modules.WasmModule(ctx, s.Image, s.Command, s.Args); err != nil || !ok {
			return fmt.Errorf("wasmpod: create %s: image %s: %w", s.ID, s.Image, errors.Join(err, ErrNotWasm))
		}
	}
	if s.ShimGroup == "" {
		return fmt.Errorf("wasmpod: create %s: no shim group names its pod", s.ID)
	}
	if err := r.compiler.compile(ctx, m); err != nil {
		return fmt.Errorf("wasmpod: create %s: %w", s.ID, err)
	}
	spec := hostSpec(s, m, r.cfg.LogRotation)
	return r.withSandbox(ctx, s, m, func(sb *sandboxProc) error {
		if err := sb.client.Create(ctx, spec); err != nil {
			return fmt.Errorf("wasmpod: create %s: %w", s.ID, err)
		}
		sb.setCPU(s.ID, s.CPUQuota, s.CPUPeriod)
		r.mu.Lock()
		r.owner[s.ID] = s.ShimGroup
		r.mu.Unlock()
		return nil
	})
}

// hostSpec turns the pod worker's container spec into the sandbox's.
func hostSpec(s oci.Spec, m Module, rot oci.LogRotation) wasmhost.ContainerSpec {
	spec := wasmhost.ContainerSpec{
		ID:          s.ID,
		Labels:      s.Labels,
		Module:      m.Path,
		Digest:      m.ImageDigest,
		Argv:        m.Argv,
		Env:         mergeEnv(m.Env, s.Env),
		MemoryLimit: s.MemoryLimit,
		LogPath:     s.LogPath,
		LogMaxSize:  rot.MaxSize,
		LogMaxFiles: rot.MaxFiles,
	}
	for _, p := range s.Ports {
		spec.Ports = append(spec.Ports, wasmhost.Port{Port: p.Port, Protocol: p.Protocol})
	}
	for _, mt := range s.Mounts {
		switch mt.Destination {
		case "/etc/resolv.conf":
			spec.ResolvConf = mt.Source
		case "/etc/hosts":
			spec.Hosts = mt.Source
		}
		// Files (/etc/hosts, resolv.conf, the termination log) have no
		// place among WASI's preopened directories.
		if fi, err := os.Stat(mt.Source); err != nil || !fi.IsDir() {
			continue
		}
		spec.Preopens = append(spec.Preopens, wasmhost.Preopen{
			HostPath: mt.Source, GuestPath: mt.Destination, ReadOnly: slices.Contains(mt.Options, "ro"),
		})
	}
	return spec
}

// mergeEnv lets the container's variables override the image's, as
// runtime/oci does.
func mergeEnv(image, container []string) []string {
	set := map[string]bool{}
	for _, kv := range container {
		k, _, _ := strings.Cut(kv, "=")
		set[k] = true
	}
	var out []string
	for _, kv := range image {
		if k, _, _ := strings.Cut(kv, "="); !set[k] {
			out = append(out, kv)
		}
	}
	return append(out, container...)
}

// client is the sandbox of container id.
func (r *Runtime) client(id string) (*sandboxProc, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	group, ok := r.owner[id]
	if !ok {
		return nil, fmt.Errorf("wasmpod: container %s: %w", id, errdefs.ErrNotFound)
	}
	sb, ok := r.sandboxes[group]
	if !ok {
		return nil, fmt.Errorf("wasmpod: container %s: its sandbox is gone: %w", id, errdefs.ErrNotFound)
	}
	return sb, nil
}

// Start starts the container's guest.
func (r *Runtime) Start(ctx context.Context, id string) error {
	sb, err := r.client(id)
	if err != nil {
		return err
	}
	if err := sb.client.Start(ctx, id); err != nil {
		return fmt.Errorf("wasmpod: start %s: %w", id, err)
	}
	return nil
}

// Status is the container's state in the pod worker's terms.
func (r *Runtime) Status(ctx context.Context, id string) (oci.State, error) {
	sb, err := r.client(id)
	if err != nil {
		return oci.State{}, err
	}
	st, err := sb.client.State(ctx, id)
	if err != nil {
		return oci.State{}, fmt.Errorf("wasmpod: status of %s: %w", id, notFound(err))
	}
	return ociState(st), nil
}

func ociState(st wasmhost.State) oci.State {
	out := oci.State{
		ID: st.ID, Pid: uint32(st.Pid), ExitCode: st.ExitCode,
		StartedAt: st.StartedAt, FinishedAt: st.FinishedAt,
		OOMKilled: st.OOMKilled(), LogPath: st.LogPath,
	}
	switch st.Status {
	case wasmhost.Created:
		out.Status = oci.StatusCreated
	case wasmhost.Running:
		out.Status = oci.StatusRunning
	case wasmhost.Exited:
		out.Status = oci.StatusExited
	default:
		out.Status = oci.StatusUnknown
	}
	return out
}

// notFound makes the sandbox's not-found containerd's, which the pod
// worker tests for.
func notFound(err error) error {
	if errors.Is(err, wasmhost.ErrNotFound) {
		return errors.Join(err, errdefs.ErrNotFound)
	}
	return err
}

// Wait delivers the container's exit.
func (r *Runtime) Wait(ctx context.Context, id string) (<-chan oci.ExitStatus, error) {
	sb, err := r.client(id)
	if err != nil {
		return nil, err
	}
	ch := make(chan oci.ExitStatus, 1)
	go func() {
		st, err := sb.client.Wait(ctx, id)
		if err != nil {
			ch <- oci.ExitStatus{Err: fmt.Errorf("wasmpod: wait for %s: %w", id, err)}
			return
		}
		ch <- oci.ExitStatus{Code: st.ExitCode, ExitedAt: st.FinishedAt}
	}()
	return ch, nil
}

// Stop ends the guest: its listeners close and stdin ends at once, and
// it is killed if it is still running after grace.
func (r *Runtime) Stop(ctx context.Context, id string, grace time.Duration) error {
	sb, err := r.client(id)
	if errors.Is(err, errdefs.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := sb.client.Stop(ctx, id, grace); err != nil && !errors.Is(err, wasmhost.ErrNotFound) {
		return fmt.Errorf("wasmpod: stop %s: %w", id, err)
	}
	return nil
}

// Remove forgets a stopped container; the pod's last one takes the
// sandbox process with it.
func (r *Runtime) Remove(ctx context.Context, id string) error {
	sb, err := r.client(id)
	if errors.Is(err, errdefs.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := sb.client.Remove(ctx, id); err != nil && !errors.Is(err, wasmhost.ErrNotFound) {
		if !sandboxGone(err) {
			return fmt.Errorf("wasmpod: remove %s: %w", id, err)
		}
		// The process went with the pod's cgroup, which the pod worker
		// removes before the containers: nothing is left to remove.
		r.dropSandbox(sb)
		return nil
	}
	r.mu.Lock()
	delete(r.owner, id)
	r.mu.Unlock()
	sb.mu.Lock()
	sb.setCPU(id, 0, 0)
	sb.mu.Unlock()
	return r.shutdownIfEmpty(ctx, sb)
}

// Containers lists every sandbox's containers with their labels.
func (r *Runtime) Containers(ctx context.Context) ([]oci.Container, error) {
	r.mu.Lock()
	sbs := make([]*sandboxProc, 0, len(r.sandboxes))
	for _, sb := range r.sandboxes {
		sbs = append(sbs, sb)
	}
	r.mu.Unlock()
	var out []oci.Container
	for _, sb := range sbs {
		sts, err := sb.client.List(ctx)
		if sandboxGone(err) {
			r.dropSandbox(sb)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("wasmpod: list the containers of sandbox %s: %w", sb.group, err)
		}
		for _, st := range sts {
			out = append(out, oci.Container{ID: st.ID, Labels: st.Labels})
		}
	}
	return out, nil
}

// Exec runs a new instance of the container's module with cmd as argv.
// Without a terminal in WASI, a TTY exec gets its stderr on stdout.
func (r *Runtime) Exec(ctx context.Context, id string, o oci.ExecOptions) (int, error) {
	sb, err := r.client(id)
	if err != nil {
		return -1, err
	}
	stderr := o.Stderr
	if o.TTY {
		stderr = o.Stdout
	}
	code, err := sb.client.Exec(ctx, id, wasmhost.ExecOptions{Argv: o.Cmd, Stdin: o.Stdin, Stdout: o.Stdout, Stderr: stderr})
	if err != nil {
		return -1, fmt.Errorf("wasmpod: exec %q in %s: %w", o.Cmd, id, notFound(err))
	}
	return code, nil
}

// AttachStreams is not offered for wasm containers: their output is in
// their logs.
func (r *Runtime) AttachStreams(_ context.Context, id string, _ oci.AttachOptions) error {
	return fmt.Errorf("wasmpod: attach to %s: wasm containers cannot be attached to; use kubectl logs -f: %w", id, errdefs.ErrNotImplemented)
}

// Attach has nothing to take over from an earlier agent: the sandbox
// process writes the containers' logs itself.
func (r *Runtime) Attach(context.Context, string) error { return nil }
