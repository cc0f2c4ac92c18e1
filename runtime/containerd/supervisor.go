package containerd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	client "github.com/containerd/containerd"
)

// Timings of the supervisor. Restarts back off so that a containerd that
// dies at once (a corrupt database, a full disk) does not spin the node's two
// cores; a run that lasted stableRun resets the back-off, so one crash after
// days of service is retried quickly.
const (
	defaultStopGrace  = 10 * time.Second
	defaultStartLimit = time.Minute
	minBackoff        = 200 * time.Millisecond
	maxBackoff        = 30 * time.Second
	stableRun         = time.Minute
	readyPoll         = 100 * time.Millisecond
)

// Config says where the private containerd keeps its files and which binary
// runs it.
type Config struct {
	// Dir holds config.toml, root/, state/, the sockets and containerd.log.
	// It must be short enough for the socket paths to fit a unix socket
	// address (107 bytes for Dir + "/containerd.sock.ttrpc").
	Dir string
	// Binary is the containerd executable; empty means containerd on PATH.
	Binary string
	// StopGrace is how long Stop waits after SIGTERM before SIGKILL;
	// zero means 10s.
	StopGrace time.Duration
	// Logger receives restarts and failures; nil means slog.Default().
	Logger *slog.Logger
}

// Supervisor owns one containerd child process and keeps it running until
// Stop.
type Supervisor struct {
	layout layout
	binary string
	grace  time.Duration
	log    *slog.Logger

	// spawns carries requests to the one thread that forks containerd;
	// see spawnThread.
	spawns   chan chan spawnResult
	stop     chan struct{} // closed by Stop: no more restarts
	done     chan struct{} // closed when the restart loop has returned
	stopOnce sync.Once
	stopErr  error

	mu       sync.Mutex
	current  *child
	restarts int
}

// child is one run of the containerd process.
type child struct {
	cmd     *exec.Cmd
	started time.Time
	exited  chan struct{} // closed once err holds the exit status
	err     error
}

// Start writes the config, starts containerd and returns once its gRPC API
// answers, so the caller can use Address at once. ctx bounds the wait for
// that first answer only; the supervisor itself lives until Stop.
func Start(ctx context.Context, cfg Config) (*Supervisor, error) {
	if cfg.Dir == "" {
		return nil, errors.New("containerd supervisor: Config.Dir is required")
	}
	l, err := newLayout(cfg.Dir)
	if err != nil {
		return nil, err
	}
	bin := cfg.Binary
	if bin == "" {
		bin = "containerd"
	}
	path, err := exec.LookPath(bin)
	if err != nil {
		return nil, fmt.Errorf("containerd binary %q: %w", bin, err)
	}
	s := &Supervisor{
		layout: l,
		binary: path,
		grace:  cfg.StopGrace,
		log:    cfg.Logger,
		spawns: make(chan chan spawnResult),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	if s.grace <= 0 {
		s.grace = defaultStopGrace
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.log = s.log.With("component", "containerd", "dir", l.dir)

	if err := l.writeConfig(); err != nil {
		return nil, err
	}
	// A containerd left behind by an agent that was killed would hold the
	// metadata database lock, and a new one would wait on it forever.
	if err := s.killStale(); err != nil {
		return nil, err
	}
	go s.spawnThread()
	c, err := s.spawn()
	if err != nil {
		close(s.spawns)
		return nil, err
	}
	s.current = c
	if _, hasDeadline := ctx.Deadline(); !hasDeadline {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultStartLimit)
		defer cancel()
	}
	if err := s.waitReady(ctx, c); err != nil {
		s.terminate(c)
		close(s.spawns)
		_ = os.Remove(l.pidFile)
		return nil, err
	}
	go s.superviseLoop()
	return s, nil
}

// Address is the containerd gRPC socket path, for containerd.New.
func (s *Supervisor) Address() string { return s.layout.grpc }

// Dir is the absolute directory the child keeps its files in.
func (s *Supervisor) Dir() string { return s.layout.dir }

// LogPath is the file containerd writes its log to.
func (s *Supervisor) LogPath() string { return s.layout.log }

// PID is the process id of the running containerd, or 0 between a crash and
// its restart.
func (s *Supervisor) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.current == nil {
		return 0
	}
	select {
	case <-s.current.exited:
		return 0
	default:
		return s.current.cmd.Process.Pid
	}
}

// Restarts counts the times containerd was started again after dying.
func (s *Supervisor) Restarts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.restarts
}

// Stop ends supervision and terminates containerd: SIGTERM, then SIGKILL if it
// has not exited after the grace period. It returns once the process is gone.
// Containers keep running in their shims and are re-adopted by the next
// containerd started on the same Dir.
func (s *Supervisor) Stop() error {
	s.stopOnce.Do(func() {
		close(s.stop)
		<-s.done
		s.mu.Lock()
		c := s.current
		s.mu.Unlock()
		if c != nil {
			s.stopErr = s.terminate(c)
		}
		close(s.spawns)
		if err := os.Remove(s.layout.pidFile); err != nil && !errors.Is(err, os.ErrNotExist) && s.stopErr == nil {
			s.stopErr = fmt.Errorf("remove containerd pid file: %w", err)
		}
	})
	return s.stopErr
}

type spawnResult struct {
	c   *child
	err error
}

// spawnThread forks every containerd of the supervisor from one OS thread
// that lives until Stop. The parent-death signal is tied to the thread
// that forked, not to the process: a thread the Go runtime destroys (as it
// does with one left locked by a goroutine that switched network
// namespaces) would take containerd down with it.
func (s *Supervisor) spawnThread() {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	for reply := range s.spawns {
		c, err := s.spawnHere()
		reply <- spawnResult{c, err}
	}
}

// spawn starts a containerd from the spawning thread.
func (s *Supervisor) spawn() (*child, error) {
	reply := make(chan spawnResult, 1)
	s.spawns <- reply
	r := <-reply
	return r.c, r.err
}

func (s *Supervisor) spawnHere() (*child, error) {
	logf, err := os.OpenFile(s.layout.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open containerd log: %w", err)
	}
	cmd := exec.Command(s.binary, "--config", s.layout.config)
	cmd.Dir = s.layout.dir
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// Its own process group keeps a Ctrl-C meant for the agent from
		// reaching containerd directly: the agent decides when it stops.
		Setpgid: true,
		// If the agent dies without Stop (even by SIGKILL), containerd
		// stops cleanly rather than holding the database when the agent
		// comes back; the shims and their containers keep running, and the
		// next containerd on the same directory reconnects to them. The
		// kernel ties this to the forking thread, which spawnThread keeps
		// alive.
		Pdeathsig: syscall.SIGTERM,
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", s.binary, err)
	}
	c := &child{cmd: cmd, started: time.Now(), exited: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		logf.Close()
		close(c.exited)
	}()
	if err := os.WriteFile(s.layout.pidFile, []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o600); err != nil {
		s.log.Warn("writing containerd pid file", "err", err)
	}
	return c, nil
}

// waitReady polls the Version call until it answers, the process exits or
// ctx ends. Version proves more than a listening socket: the services behind
// it are loaded.
func (s *Supervisor) waitReady(ctx context.Context, c *child) error {
	var lastErr error
	for {
		select {
		case <-c.exited:
			return fmt.Errorf("containerd exited while starting (%v); log %s ends with:\n%s", c.err, s.layout.log, s.logTail())
		default:
		}
		if lastErr = probe(ctx, s.layout.grpc); lastErr == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("containerd did not answer on %s: %w (last error: %v); log %s ends with:\n%s",
				s.layout.grpc, ctx.Err(), lastErr, s.layout.log, s.logTail())
		case <-c.exited:
		case <-time.After(readyPoll):
		}
	}
}

func probe(ctx context.Context, address string) error {
	if _, err := os.Stat(address); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	cl, err := client.New(address, client.WithTimeout(time.Second))
	if err != nil {
		return err
	}
	defer cl.Close()
	_, err = cl.Version(ctx)
	return err
}

// superviseLoop restarts containerd whenever it exits, until Stop.
func (s *Supervisor) superviseLoop() {
	defer close(s.done)
	backoff := minBackoff
	for {
		s.mu.Lock()
		c := s.current
		s.mu.Unlock()
		select {
		case <-s.stop:
			return
		case <-c.exited:
		}
		ran := time.Since(c.started)
		if ran >= stableRun {
			backoff = minBackoff
		}
		s.log.Warn("containerd exited; restarting", "err", c.err, "ran", ran.Round(time.Millisecond), "after", backoff)
		select {
		case <-s.stop:
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, maxBackoff)

		next, err := s.spawn()
		if err != nil {
			s.log.Error("restarting containerd", "err", err)
			// Keep the loop's shape: a child that has already exited
			// sends us round again after the next back-off.
			next = &child{started: time.Now(), exited: make(chan struct{}), err: err}
			close(next.exited)
		}
		s.mu.Lock()
		s.current = next
		s.restarts++
		s.mu.Unlock()
	}
}

// terminate sends SIGTERM, waits the grace period, then SIGKILLs.
func (s *Supervisor) terminate(c *child) error {
	if c.cmd == nil {
		return nil
	}
	select {
	case <-c.exited:
		return nil
	default:
	}
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signal containerd: %w", err)
	}
	select {
	case <-c.exited:
		return nil
	case <-time.After(s.grace):
	}
	s.log.Warn("containerd did not stop in time; killing it", "grace", s.grace)
	if err := c.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("kill containerd: %w", err)
	}
	<-c.exited
	return nil
}

// killStale ends a containerd recorded in the pid file if it is still ours:
// the pid must run containerd with our config file, since the pid may have
// been reused by an unrelated process.
func (s *Supervisor) killStale() error {
	b, err := os.ReadFile(s.layout.pidFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read containerd pid file: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return os.Remove(s.layout.pidFile)
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !bytes.Contains(cmdline, []byte(s.layout.config)) {
		return os.Remove(s.layout.pidFile)
	}
	s.log.Warn("stopping a containerd left running on this directory", "pid", pid)
	_ = syscall.Kill(pid, syscall.SIGTERM)
	deadline := time.Now().Add(s.grace)
	for time.Now().Before(deadline) {
		if syscall.Kill(pid, 0) != nil {
			return os.Remove(s.layout.pidFile)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kill stale containerd %d: %w", pid, err)
	}
	// It is not our child, so we cannot wait for it; its exit shows as
	// the pid leaving /proc (or turning into a zombie of its parent).
	for i := 0; i < 100; i++ {
		if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err != nil || strings.Contains(string(st), ") Z ") {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	return os.Remove(s.layout.pidFile)
}

// logTail returns the end of containerd's log, for error messages that
// explain a failed start.
func (s *Supervisor) logTail() string {
	f, err := os.Open(s.layout.log)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	defer f.Close()
	const tail = 2048
	if st, err := f.Stat(); err == nil && st.Size() > tail {
		_, _ = f.Seek(st.Size()-tail, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	return strings.TrimSpace(string(b))
}
