package oci

import (
	"context"
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/namespaces"
	"github.com/containerd/containerd/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/wasmkube/wasmkube/runtime/images"
)

// Container labels carrying what Start and Status need after Create, kept in
// containerd so that they survive an agent restart.
const (
	ownLabelPrefix = "io.wasmkube."
	labelLogPath   = "io.wasmkube.log-path"
	labelWarnings  = "io.wasmkube.warnings"
	labelStartedAt = "io.wasmkube.started-at"
	labelStdin     = "io.wasmkube.stdin" // "true", or "once" for StdinOnce
	labelTTY       = "io.wasmkube.tty"
	// The stdin FIFO of the task whose stdin a StdinOnce close ended.
	labelStdinClosed = "io.wasmkube.stdin-closed"
)

// shimGroupAnnotation is the spec annotation the runc v2 shim reads to
// serve several containers from one shim process.
const shimGroupAnnotation = "io.containerd.runc.v2.group"

// Runtime runs a node's OCI containers through containerd.
type Runtime struct {
	client    *containerd.Client
	namespace string
	logDir    string
	fifoDir   string
	cgroup    string // default cgroup parent
	mountinfo string
	rotation  LogRotation

	// The cgroup layout is read once: it does not change while the node
	// runs, and Status is on the pod worker's every sync.
	ctlOnce sync.Once
	ctl     controllers
	ctlErr  error

	mu  sync.Mutex
	ios map[string]*taskIO // log copiers of the tasks this Runtime started
}

// Option configures a Runtime.
type Option func(*Runtime)

// WithNamespace sets the containerd namespace; the default is the image
// store's, so containers see the images imported for the node.
func WithNamespace(ns string) Option { return func(r *Runtime) { r.namespace = ns } }

// WithLogDir sets where a container's log goes when its Spec names no
// LogPath: <dir>/<id>.log.
func WithLogDir(dir string) Option { return func(r *Runtime) { r.logDir = dir } }

// WithFIFODir sets where the stdio FIFOs between the shim and the agent are
// made; the default is containerd's (/run/containerd/fifo).
func WithFIFODir(dir string) Option { return func(r *Runtime) { r.fifoDir = dir } }

// WithCgroupParent sets the cgroup that containers whose Spec names none
// are placed under; the default is /<namespace>.
func WithCgroupParent(path string) Option { return func(r *Runtime) { r.cgroup = path } }

// WithLogRotation sets when container logs are rotated; the default is the
// kubelet's (10 MiB, 5 files). A zero MaxSize never rotates.
func WithLogRotation(rot LogRotation) Option { return func(r *Runtime) { r.rotation = rot } }

// New returns a Runtime using client. It starts nothing of its own; Close
// releases the log copiers of the tasks it started.
func New(client *containerd.Client, opts ...Option) *Runtime {
	r := &Runtime{
		client:    client,
		namespace: images.Namespace,
		mountinfo: "/proc/self/mountinfo",
		ios:       map[string]*taskIO{},
		rotation:  LogRotation{MaxSize: DefaultLogMaxSize, MaxFiles: DefaultLogMaxFiles},
	}
	for _, o := range opts {
		o(r)
	}
	if r.cgroup == "" {
		r.cgroup = "/" + r.namespace
	}
	return r
}

func (r *Runtime) ns(ctx context.Context) context.Context {
	return namespaces.WithNamespace(ctx, r.namespace)
}

// Create makes the containerd container for spec: a writable snapshot of
// the image and the OCI runtime spec, nothing running yet.
func (r *Runtime) Create(ctx context.Context, s Spec) (err error) {
	if err := s.validate(); err != nil {
		return fmt.Errorf("oci: create %q: %w", s.ID, err)
	}
	wrap := func(err error) error { return fmt.Errorf("oci: create %s: %w", s.ID, err) }
	ctx = r.ns(ctx)
	logPath := s.LogPath
	if logPath == "" {
		if r.logDir == "" {
			return wrap(errors.New("no LogPath and no log directory configured"))
		}
		logPath = filepath.Join(r.logDir, s.ID+".log")
	}
	if _, err := r.client.LoadContainer(ctx, s.ID); err == nil {
		return wrap(fmt.Errorf("container %w", errdefs.ErrAlreadyExists))
	} else if !errdefs.IsNotFound(err) {
		return wrap(err)
	}

	img, err := r.image(ctx, s.Image)
	if err != nil {
		return wrap(err)
	}
	snapshotter, err := images.Snapshotter(ctx, r.client)
	if err != nil {
		return wrap(err)
	}
	unpacked, err := img.IsUnpacked(ctx, snapshotter)
	if err != nil {
		return wrap(fmt.Errorf("check image %s is unpacked: %w", img.Name(), err))
	}
	if !unpacked {
		if err := img.Unpack(ctx, snapshotter); err != nil {
			return wrap(fmt.Errorf("unpack image %s: %w", img.Name(), err))
		}
	}
	imgSpec, err := img.Spec(ctx)
	if err != nil {
		return wrap(fmt.Errorf("read image config of %s: %w", img.Name(), err))
	}
	args, err := processArgs(imgSpec.Config, s.Command, s.Args)
	if err != nil {
		return wrap(err)
	}
	ctl, err := r.controllers()
	if err != nil {
		return wrap(err)
	}
	limits, warnings := limitOpts(s, ctl)

	parent := s.CgroupParent
	if parent == "" {
		parent = r.cgroup
	}
	specOpts := []oci.SpecOpts{
		oci.WithImageConfig(img),
		oci.WithProcessArgs(args...),
	}
	if s.TTY {
		// Before the environment, so a declared TERM wins over xterm.
		specOpts = append(specOpts, oci.WithTTY)
	}
	specOpts = append(specOpts,
		// The cgroupfs form (a path, not systemd's slice:prefix:name): runc
		// is not configured for the systemd driver, and an edge node may
		// have no systemd at all.
		oci.WithCgroup(path.Join(parent, s.ID)),
	)
	if len(s.Env) > 0 {
		specOpts = append(specOpts, oci.WithEnv(s.Env))
	}
	if s.WorkingDir != "" {
		specOpts = append(specOpts, oci.WithProcessCwd(s.WorkingDir))
	}
	if s.NetnsPath != "" {
		specOpts = append(specOpts, oci.WithLinuxNamespace(specs.LinuxNamespace{
			Type: specs.NetworkNamespace, Path: s.NetnsPath,
		}))
	} else {
		specOpts = append(specOpts, oci.WithHostNamespace(specs.NetworkNamespace),
			oci.WithHostHostsFile, oci.WithHostResolvconf)
	}
	if s.Hostname != "" {
		specOpts = append(specOpts, oci.WithHostname(s.Hostname))
	}
	if len(s.Mounts) > 0 {
		specOpts = append(specOpts, oci.WithMounts(bindMounts(s.Mounts)))
	}
	if s.User != nil {
		specOpts = append(specOpts, withUser(*s.User))
	}
	if s.ReadOnlyRootfs {
		specOpts = append(specOpts, oci.WithRootFSReadonly())
	}
	if s.NoNewPrivileges {
		specOpts = append(specOpts, oci.WithNoNewPrivileges)
	}
	if s.ShimGroup != "" {
		specOpts = append(specOpts, oci.WithAnnotations(map[string]string{shimGroupAnnotation: s.ShimGroup}))
	}
	if s.Privileged {
		specOpts = append(specOpts, oci.WithPrivileged, oci.WithAllDevicesAllowed, oci.WithHostDevices)
	} else {
		specOpts = append(specOpts, capabilityOpts(s)...)
	}
	specOpts = append(specOpts, limits...)

	labels := map[string]string{labelLogPath: logPath}
	for k, v := range s.Labels {
		labels[k] = v
	}
	switch {
	case s.Stdin && s.StdinOnce:
		labels[labelStdin] = "once"
	case s.Stdin:
		labels[labelStdin] = "true"
	}
	if s.TTY {
		labels[labelTTY] = "true"
	}
	if len(warnings) > 0 {
		labels[labelWarnings] = strings.Join(warnings, "; ")
	}

	// A snapshot keyed by the id without a container is left from a create
	// that failed or crashed halfway (the container check above ran
	// first, so it belongs to no one).
	if err := r.removeSnapshot(ctx, snapshotter, s.ID); err != nil {
		return wrap(err)
	}
	_, err = r.client.NewContainer(ctx, s.ID,
		containerd.WithImage(img),
		containerd.WithSnapshotter(snapshotter),
		containerd.WithNewSnapshot(s.ID, img),
		containerd.WithNewSpec(specOpts...),
		containerd.WithContainerLabels(labels),
	)
	if err != nil {
		// NewContainer makes the snapshot before the spec, and keeps it
		// when a later step fails.
		if rmErr := r.removeSnapshot(ctx, snapshotter, s.ID); rmErr != nil {
			err = errors.Join(err, rmErr)
		}
		return wrap(err)
	}
	return nil
}

// image finds ref in this Runtime's namespace, with the store's name
// lookups.
func (r *Runtime) image(ctx context.Context, ref string) (containerd.Image, error) {
	return images.Get(ctx, r.client, ref)
}

func (r *Runtime) removeSnapshot(ctx context.Context, snapshotter, key string) error {
	err := r.client.SnapshotService(snapshotter).Remove(ctx, key)
	if err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("remove snapshot %s: %w", key, err)
	}
	return nil
}

// Remove deletes the container's task (killing it if it still runs), the
// container and its snapshot. Removing what is already gone succeeds, so
// the agent can retry after a crash at any point.
func (r *Runtime) Remove(ctx context.Context, id string) error {
	ctx = r.ns(ctx)
	wrap := func(err error) error { return fmt.Errorf("oci: remove %s: %w", id, err) }
	c, err := r.client.LoadContainer(ctx, id)
	if errdefs.IsNotFound(err) {
		r.closeIO(id)
		snapshotter, err := images.Snapshotter(ctx, r.client)
		if err != nil {
			return wrap(err)
		}
		if err := r.removeSnapshot(ctx, snapshotter, id); err != nil {
			return wrap(err)
		}
		return nil
	}
	if err != nil {
		return wrap(err)
	}
	if t, err := c.Task(ctx, nil); err == nil {
		if err := r.deleteTask(ctx, id, t); err != nil {
			return wrap(err)
		}
	} else if !errdefs.IsNotFound(err) {
		return wrap(fmt.Errorf("load task: %w", err))
	}
	r.closeIO(id)
	if err := c.Delete(ctx, containerd.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
		return wrap(fmt.Errorf("delete container: %w", err))
	}
	return nil
}

// List returns the ids of the containers in the namespace, so that an
// agent coming back up can adopt what its predecessor started.
func (r *Runtime) List(ctx context.Context) ([]string, error) {
	cs, err := r.client.Containers(r.ns(ctx))
	if err != nil {
		return nil, fmt.Errorf("oci: list containers: %w", err)
	}
	ids := make([]string, 0, len(cs))
	for _, c := range cs {
		ids = append(ids, c.ID())
	}
	sort.Strings(ids)
	return ids, nil
}

// controllers is what runc finds on this machine, read once.
func (r *Runtime) controllers() (controllers, error) {
	r.ctlOnce.Do(func() { r.ctl, r.ctlErr = detectControllers(r.mountinfo) })
	return r.ctl, r.ctlErr
}

// Container is one container of the namespace, as Containers lists it.
type Container struct {
	ID     string
	Labels map[string]string // the Spec's labels, without this package's own
}

// Containers lists the containers with the labels their Spec gave them.
func (r *Runtime) Containers(ctx context.Context) ([]Container, error) {
	cs, err := r.client.Containers(r.ns(ctx))
	if err != nil {
		return nil, fmt.Errorf("oci: list containers: %w", err)
	}
	out := make([]Container, 0, len(cs))
	for _, c := range cs {
		// The listing already carries the metadata; refreshing it would
		// cost one round trip per container.
		info, err := c.Info(r.ns(ctx), containerd.WithoutRefreshedMetadata)
		if err != nil {
			return nil, fmt.Errorf("oci: labels of %s: %w", c.ID(), err)
		}
		labels := map[string]string{}
		for k, v := range info.Labels {
			if !strings.HasPrefix(k, ownLabelPrefix) {
				labels[k] = v
			}
		}
		out = append(out, Container{ID: c.ID(), Labels: labels})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Close stops copying the logs of the tasks this Runtime started or
// attached to. The containers keep running and their FIFOs stay, so that
// the next Runtime can Attach to them; Close is for the agent's exit. The
// containers' stdin stays open: the shims hold it.
func (r *Runtime) Close() error {
	r.mu.Lock()
	ios := r.ios
	r.ios = map[string]*taskIO{}
	r.mu.Unlock()
	for _, tio := range ios {
		tio.lio.releaseStdin()
		tio.io.Cancel()
		<-tio.done
	}
	return nil
}
