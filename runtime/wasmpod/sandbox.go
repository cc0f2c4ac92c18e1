package wasmpod

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/wasmkube/wasmkube/runtime/oci"
	"github.com/wasmkube/wasmkube/sandbox/cgroups"
	"github.com/wasmkube/wasmkube/sandbox/network"
	"github.com/wasmkube/wasmkube/sandbox/wasmhost"
)

// sandboxCgroup is the leaf of the pod's cgroup that holds its sandbox
// process: cgroup2 allows processes only in leaves once controllers are
// enabled for children, and the OCI containers are the pod's other leaves.
const sandboxCgroup = wasmhost.CgroupLeaf

// startTimeout bounds how long a new sandbox process may take to answer.
const startTimeout = 10 * time.Second

// sandboxProc is one pod's sandbox process.
type sandboxProc struct {
	group  string
	client *wasmhost.Client
	// cgroup is the process's, the leaf wasm-sandbox of the pod's; nil
	// when it runs in the agent's.
	cgroup *cgroups.Cgroup
	// placed is closed once the process has moved into cgroup (see
	// place); nil for one an earlier agent started.
	placed <-chan struct{}

	mu     sync.Mutex
	closed bool
	cpu    map[string][2]int64 // container id → CFS quota and period
}

func socketPath(dir, group string) string {
	return filepath.Join(sandboxesDir(dir), group+".sock")
}

// maxSocketPath is the room sun_path leaves for a socket's path.
const maxSocketPath = 107

// withSandbox runs fn with the pod's sandbox process, starting it if the
// pod has none. fn runs under the sandbox's lock, so a concurrent Remove
// of the pod's last container cannot shut the process down under it.
func (r *Runtime) withSandbox(ctx context.Context, s oci.Spec, m Module, fn func(*sandboxProc) error) error {
	for {
		r.mu.Lock()
		sb, ok := r.sandboxes[s.ShimGroup]
		if !ok {
			sb = &sandboxProc{group: s.ShimGroup, cpu: map[string][2]int64{}}
			r.sandboxes[sb.group] = sb
		}
		r.mu.Unlock()
		sb.mu.Lock()
		if sb.closed {
			// Shut down meanwhile; the next round makes a new one.
			sb.mu.Unlock()
			continue
		}
		if sb.client == nil {
			if err := r.start(ctx, sb, s, m); err != nil {
				sb.closed = true
				sb.mu.Unlock()
				r.forget(sb)
				return err
			}
		}
		err := fn(sb)
		sb.mu.Unlock()
		return err
	}
}

func (r *Runtime) forget(sb *sandboxProc) {
	r.mu.Lock()
	if r.sandboxes[sb.group] == sb {
		delete(r.sandboxes, sb.group)
	}
	r.mu.Unlock()
}

// start starts the pod's sandbox process, or dials the one an earlier
// agent left, or takes a warm one of m's image from the pool.
func (r *Runtime) start(ctx context.Context, sb *sandboxProc, s oci.Spec, m Module) error {
	sock := socketPath(r.cfg.Dir, sb.group)
	if len(sock) > maxSocketPath {
		return fmt.Errorf("wasmpod: socket path %s is longer than %d bytes: use a shorter data directory", sock, maxSocketPath)
	}
	if s.CgroupParent != "" {
		pod := cgroups.ForPath(r.hierarchies, s.CgroupParent)
		leaf, err := pod.Sub(sandboxCgroup)
		if err != nil {
			return fmt.Errorf("wasmpod: sandbox cgroup: %w", err)
		}
		sb.cgroup = leaf
		// A pod-level memory limit (the sum of the containers') would
		// charge the sandbox's compiled code to the guests' limits and let
		// the kernel kill every guest of the pod at once; the guests'
		// limits hold on their linear memory instead. The pod worker sets
		// no limit on a pod that has this leaf.
		if err := pod.SetMemoryLimit(0); err != nil && !errors.Is(err, cgroups.ErrControllerUnavailable) {
			return fmt.Errorf("wasmpod: lift the pod memory limit: %w", err)
		}
	}
	if c, err := wasmhost.Dial(ctx, sock); err == nil {
		sb.client = c
		return nil
	}
	if err := os.Remove(sock); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("wasmpod: stale socket: %w", err)
	}
	defer r.pool.want(m)
	if w := r.pool.take(m.ImageDigest); w != nil {
		err := r.adoptWarm(ctx, sb, s.NetnsPath, w)
		if err == nil {
			return nil
		}
		r.cfg.Log.Warn("wasmpod: a warm sandbox could not be taken: starting one", "pod", sb.group, "err", err)
	}
	cmd, exited, err := r.launcher().launch(sb.group, s.NetnsPath, sb.cgroup)
	if err != nil {
		return fmt.Errorf("wasmpod: start the sandbox process of pod %s: %w", sb.group, err)
	}
	r.place(sb, cmd.Process.Pid)
	sb.client, err = dialNew(ctx, sock, exited)
	if err != nil {
		_ = cmd.Process.Kill()
		return fmt.Errorf("wasmpod: sandbox process of pod %s (log %s): %w", sb.group, logPath(r.cfg.Dir, sb.group), err)
	}
	return nil
}

// place moves the sandbox process pid into sb's cgroup in every
// hierarchy, in the background: in each v1 hierarchy of a hybrid host the
// move waits for an RCU grace period (10 ms here), while the process loads
// its module or starts its guest meanwhile. Removing the cgroup waits for
// the move. A process started on cgroup2 alone began in its cgroup
// already (launch), and the move finds it there.
func (r *Runtime) place(sb *sandboxProc, pid int) {
	if sb.cgroup == nil {
		return
	}
	placed := make(chan struct{})
	sb.placed = placed
	go func() {
		defer close(placed)
		if err := sb.cgroup.Add(pid); err != nil {
			r.cfg.Log.Warn("wasmpod: move a sandbox process into its pod's cgroup", "pod", sb.group, "pid", pid, "err", err)
		}
	}()
}

// launcher starts sandbox processes.
type launcher struct {
	binary, dir string // dir: the runtime's, DIR/wasm
}

func (r *Runtime) launcher() launcher { return launcher{binary: r.cfg.SandboxBinary, dir: r.cfg.Dir} }

func logPath(dir, name string) string {
	return filepath.Join(sandboxesDir(dir), name+".log")
}

// launch starts a sandbox process serving on the socket of name, in the
// network namespace at netns ("" for the agent's) and, on cgroup2, in
// cgroup (nil for the agent's), with extra arguments for serve.
func (l launcher) launch(name, netns string, cgroup *cgroups.Cgroup, extra ...string) (*exec.Cmd, <-chan error, error) {
	logFile, err := os.OpenFile(logPath(l.dir, name), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("sandbox log: %w", err)
	}
	defer logFile.Close()
	args := append([]string{"serve", "--socket", socketPath(l.dir, name), "--cache-dir", cacheDir(l.dir)}, extra...)
	cmd := exec.Command(l.binary, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// A session of its own, and no parent-death signal: the process and
	// its guests outlive the agent.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if cgroup != nil {
		if dir, ok := cgroup.UnifiedDir(); ok {
			// On cgroup2 it starts in its cgroup: nothing it allocates is
			// ever charged to the agent's.
			cg, err := os.Open(dir)
			if err != nil {
				return nil, nil, fmt.Errorf("sandbox cgroup: %w", err)
			}
			defer cg.Close()
			cmd.SysProcAttr.UseCgroupFD = true
			cmd.SysProcAttr.CgroupFD = int(cg.Fd())
		}
	}
	start := cmd.Start
	if netns != "" {
		// The child is forked from the thread that entered the namespace,
		// so all of it lives there.
		start = func() error { return network.Do(netns, cmd.Start) }
	}
	if err := start(); err != nil {
		return nil, nil, err
	}
	// The v1 hierarchies of a hybrid host (cpu among them) have no
	// CLONE_INTO_CGROUP: the caller moves the process there (place).
	return cmd, reap(cmd), nil
}

// removeFiles removes the socket and log of the sandbox called name.
func (l launcher) removeFiles(name string) {
	_ = os.Remove(socketPath(l.dir, name))
	_ = os.Remove(logPath(l.dir, name))
}

// dialNew waits for a new process to answer on its socket.
func dialNew(ctx context.Context, sock string, exited <-chan error) (*wasmhost.Client, error) {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	delay := time.Millisecond
	for {
		c, err := wasmhost.Dial(ctx, sock)
		if err == nil {
			return c, nil
		}
		select {
		case werr := <-exited:
			return nil, fmt.Errorf("exited before answering: %v", werr)
		case <-ctx.Done():
			return nil, fmt.Errorf("no answer on %s: %w", sock, err)
		case <-time.After(delay):
		}
		delay = min(2*delay, 50*time.Millisecond)
	}
}

// setCPU, called with sb.mu held, records container id's CPU limit (a zero quota removes it) and
// writes the sum of the pod's wasm containers' limits to the sandbox
// cgroup; one container without a limit leaves the sandbox unlimited.
func (sb *sandboxProc) setCPU(id string, quota int64, period uint64) {
	if sb.cgroup == nil {
		return
	}
	if quota == 0 {
		delete(sb.cpu, id)
	} else {
		sb.cpu[id] = [2]int64{quota, int64(period)}
	}
	// Quotas over one common period; no container with a limit leaves the
	// sandbox unlimited.
	const period100ms = 100 * time.Millisecond
	var total time.Duration
	for _, qp := range sb.cpu {
		total += time.Duration(qp[0]) * time.Microsecond * period100ms / time.Duration(max(qp[1], 1)*int64(time.Microsecond))
	}
	_ = sb.cgroup.SetCPU(total, period100ms, 0)
}

// shutdownIfEmpty ends the pod's sandbox process once its last container
// is removed, and its cgroup with it.
func (r *Runtime) shutdownIfEmpty(ctx context.Context, sb *sandboxProc) error {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	if sb.closed || sb.client == nil {
		return nil
	}
	sts, err := sb.client.List(ctx)
	if err != nil || len(sts) > 0 {
		return nil
	}
	sb.closed = true
	r.forget(sb)
	if err := sb.client.Shutdown(ctx); err != nil {
		return fmt.Errorf("wasmpod: shut down the sandbox of pod %s: %w", sb.group, err)
	}
	sb.client.Close()
	_ = os.Remove(socketPath(r.cfg.Dir, sb.group))
	if sb.cgroup != nil {
		if sb.placed != nil {
			<-sb.placed
		}
		if err := sb.cgroup.Remove(ctx); err != nil {
			return fmt.Errorf("wasmpod: cgroup of the sandbox of pod %s: %w", sb.group, err)
		}
	}
	return nil
}

// sandboxGone says that err is the sandbox process being gone: nothing
// listens on its socket, or the socket itself is gone.
func sandboxGone(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT)
}

// dropSandbox forgets a sandbox process that is gone, and its containers.
func (r *Runtime) dropSandbox(sb *sandboxProc) {
	sb.mu.Lock()
	sb.closed = true
	sb.mu.Unlock()
	r.forget(sb)
	r.mu.Lock()
	for id, group := range r.owner {
		if group == sb.group {
			delete(r.owner, id)
		}
	}
	r.mu.Unlock()
	sb.client.Close()
	_ = os.Remove(socketPath(r.cfg.Dir, sb.group))
}

// adopt dials the sandbox processes an earlier agent started; sockets
// nobody answers are removed.
func (r *Runtime) adopt(ctx context.Context) error {
	socks, err := filepath.Glob(filepath.Join(sandboxesDir(r.cfg.Dir), "*.sock"))
	if err != nil {
		return fmt.Errorf("wasmpod: %w", err)
	}
	for _, sock := range r.stopWarmLeftovers(ctx, socks) {
		group := strings.TrimSuffix(filepath.Base(sock), ".sock")
		c, err := wasmhost.Dial(ctx, sock)
		if err != nil {
			r.cfg.Log.Info("wasmpod: removing the socket of a sandbox that is gone", "pod", group, "err", err)
			_ = os.Remove(sock)
			continue
		}
		sb := &sandboxProc{group: group, client: c, cpu: map[string][2]int64{}}
		if dir, err := cgroupOf(c.Pid()); err == nil && filepath.Base(dir) == sandboxCgroup {
			sb.cgroup = cgroups.ForPath(r.hierarchies, dir)
		}
		sts, err := c.List(ctx)
		if err != nil {
			c.Close()
			return fmt.Errorf("wasmpod: list the containers of sandbox %s: %w", group, err)
		}
		r.sandboxes[group] = sb
		for _, st := range sts {
			r.owner[st.ID] = group
		}
	}
	return nil
}

// cgroupOf is the cgroup2 path of process pid.
func cgroupOf(pid int) (string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if rest, ok := strings.CutPrefix(line, "0::"); ok {
			return rest, nil
		}
	}
	return "", errors.New("no cgroup2 entry")
}
