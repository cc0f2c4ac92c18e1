package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wasmkube/wasmkube/internal/syncbuf"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

const (
	// ReadyTimeout bounds a server's start: embedded etcd plus the API
	// server take a few seconds on a 2-core node.
	ReadyTimeout = 30 * time.Second
	// StopTimeout is how long a process may take to exit after SIGTERM;
	// the server must shut down cleanly within it.
	StopTimeout = 10 * time.Second
	// CommandTimeout bounds one kubectl run, so a hung request fails the
	// test instead of the whole package timing out.
	CommandTimeout = 30 * time.Second
	// logTail is how much of a process log is printed on failure: the end
	// is where the cause is, and a whole etcd log would drown it.
	logTail = 64 << 10
)

// Binary returns the wasmkube binary under test, from WASMKUBE_BIN. The test
// fails when it is missing: skipping would report a green acceptance suite
// that never ran.
func Binary(t testing.TB) string {
	t.Helper()
	bin := os.Getenv("WASMKUBE_BIN")
	if bin == "" {
		t.Fatal("WASMKUBE_BIN is not set: run `make test`, or `make build` and then " +
			"`WASMKUBE_BIN=$PWD/bin/wasmkube go test ./internal/e2e/`")
	}
	st, err := os.Stat(bin)
	if err != nil {
		t.Fatalf("WASMKUBE_BIN=%s: %v (run `make build` first)", bin, err)
	}
	if st.IsDir() || st.Mode()&0o111 == 0 {
		t.Fatalf("WASMKUBE_BIN=%s is not an executable file", bin)
	}
	return bin
}

// Process is a long-running wasmkube subcommand (server, agent, up) whose
// combined output goes to a log file. It is stopped by t.Cleanup, which
// asserts a clean exit on SIGTERM.
type Process struct {
	Name    string
	LogPath string

	// StopTimeout overrides the package's StopTimeout for this process.
	StopTimeout time.Duration

	cmd      *exec.Cmd
	done     chan struct{}
	err      error // cmd.Wait's result; read only after done is closed
	stopOnce sync.Once
}

// StartProcess runs `bin args...` with env added to the test's environment.
func StartProcess(t testing.TB, name, bin string, env []string, args ...string) *Process {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// A test binary killed by its timeout must not leave servers behind.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		t.Fatalf("starting %s: %v", name, err)
	}
	logFile.Close() // the child holds its own descriptor
	p := &Process{Name: name, LogPath: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	// Cleanups run last-in first-out: the log is printed after the stop, so
	// it holds the shutdown too.
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s log (%s):\n%s", name, logPath, tail(logPath, logTail))
		}
	})
	t.Cleanup(func() { p.Stop(t) })
	return p
}

// PID is the process id, for reading /proc.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Stop sends SIGTERM and fails the test unless the process exits with status
// 0 within StopTimeout. A process that had already died is a failure too.
// Only the first call acts.
func (p *Process) Stop(t testing.TB) {
	t.Helper()
	p.stopOnce.Do(func() {
		if p.Exited() {
			t.Errorf("%s exited before it was stopped: %v", p.Name, p.err)
			return
		}
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Errorf("signalling %s: %v", p.Name, err)
		}
		timeout := StopTimeout
		if p.StopTimeout > 0 {
			timeout = p.StopTimeout
		}
		select {
		case <-p.done:
		case <-time.After(timeout):
			t.Errorf("%s did not exit within %s of SIGTERM; killing it", p.Name, timeout)
			_ = p.cmd.Process.Kill()
			<-p.done
			return
		}
		if p.err != nil {
			t.Errorf("%s did not exit cleanly on SIGTERM: %v", p.Name, p.err)
		}
	})
}

// ServerOptions configure StartServer.
type ServerOptions struct {
	// DataDir is reused when set (a restart); a new temporary one otherwise.
	DataDir string
	// Port is --secure-port. 0 lets the kernel pick a free port at bind time,
	// which cannot race with other tests the way probing for one can; the
	// chosen port is in the kubeconfig the server writes.
	Port int
	// Args are extra flags for `wasmkube server`.
	Args []string
	// ProbeHTTP waits for /readyz with an HTTP client in the test process
	// instead of kubectl. Memory measurements need it: the server pages out
	// its startup pages once serving, and the kernel keeps those that a
	// kubectl process of the same binary maps at that moment.
	ProbeHTTP bool
}

// Server is a running `wasmkube server` and the means to reach it.
type Server struct {
	*Process
	Bin        string
	DataDir    string
	Kubeconfig string
	// cacheDir keeps kubectl's discovery cache per server: the shared one
	// under $HOME is keyed by host:port, and a later server on a reused port
	// would otherwise be read with an earlier server's resource list.
	cacheDir string
}

// StartServer runs `wasmkube server` on loopback and returns once
// `kubectl get --raw /readyz` answers ok.
func StartServer(t testing.TB, opts ServerOptions) *Server {
	t.Helper()
	bin := Binary(t)
	if opts.DataDir == "" {
		opts.DataDir = t.TempDir()
	}
	s := newServer(t, bin, opts.DataDir)
	args := append([]string{"server", "--data-dir", opts.DataDir,
		"--bind-address", "127.0.0.1", "--secure-port", strconv.Itoa(opts.Port)}, opts.Args...)
	s.Process = StartProcess(t, "server", bin, nil, args...)
	s.waitReady(t, opts.ProbeHTTP)
	return s
}

// newServer is the Server of a control plane keeping its data in dataDir,
// before its process starts.
func newServer(t testing.TB, bin, dataDir string) *Server {
	t.Helper()
	s := &Server{
		Bin:        bin,
		DataDir:    dataDir,
		Kubeconfig: filepath.Join(dataDir, "admin.kubeconfig"),
		cacheDir:   t.TempDir(),
	}
	// A kubeconfig left by an earlier run points at its old port.
	if err := os.Remove(s.Kubeconfig); err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return s
}

func (s *Server) waitReady(t testing.TB, probeHTTP bool) {
	t.Helper()
	deadline := time.Now().Add(ReadyTimeout)
	var last string
	for {
		if s.Exited() {
			t.Fatalf("%s exited while starting: %v (log below)", s.Name, s.err)
		}
		if _, err := os.Stat(s.Kubeconfig); err == nil {
			var ok bool
			if probeHTTP {
				ok, last = s.readyzHTTP(t)
			} else {
				r := s.run(t, nil, 5*time.Second, "get", "--raw", "/readyz")
				ok = r.ExitCode == 0 && r.Stdout == "ok"
				last = fmt.Sprintf("exit %d, stdout %q, stderr %q", r.ExitCode, r.Stdout, r.Stderr)
			}
			if ok {
				return
			}
		} else {
			last = "no kubeconfig yet"
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready within %s: last /readyz: %s", s.Name, ReadyTimeout, last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// readyzHTTP asks /readyz anonymously, as a load balancer would.
func (s *Server) readyzHTTP(t testing.TB) (bool, string) {
	cfg := rest.AnonymousClientConfig(s.RESTConfig(t))
	client, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return false, err.Error()
	}
	defer client.CloseIdleConnections()
	client.Timeout = 5 * time.Second
	resp, err := client.Get(cfg.Host + "/readyz")
	if err != nil {
		return false, err.Error()
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return false, err.Error()
	}
	return resp.StatusCode == http.StatusOK && string(body) == "ok", fmt.Sprintf("%d %q", resp.StatusCode, body)
}

// Env is the environment kubectl and other clients of this server run with.
func (s *Server) Env() []string {
	env := make([]string, 0, len(os.Environ())+2)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KUBECONFIG=") && !strings.HasPrefix(kv, "KUBECACHEDIR=") {
			env = append(env, kv)
		}
	}
	return append(env, "KUBECONFIG="+s.Kubeconfig, "KUBECACHEDIR="+s.cacheDir)
}

// RESTConfig is the admin client config from the server's kubeconfig.
func (s *Server) RESTConfig(t testing.TB) *rest.Config {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", s.Kubeconfig)
	if err != nil {
		t.Fatalf("loading %s: %v", s.Kubeconfig, err)
	}
	return cfg
}

// Result is one finished kubectl run.
type Result struct {
	Stdout   string
	Stderr   string
	ExitCode int
}

func (r Result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.ExitCode, r.Stdout, r.Stderr)
}

// Kubectl runs `wasmkube kubectl args...` and returns what it printed and
// its exit code; only a run that cannot start or times out fails the test.
func (s *Server) Kubectl(t testing.TB, args ...string) Result {
	t.Helper()
	return s.run(t, nil, CommandTimeout, args...)
}

// KubectlStdin is Kubectl with stdin, for `-f -`.
func (s *Server) KubectlStdin(t testing.TB, stdin string, args ...string) Result {
	t.Helper()
	return s.run(t, strings.NewReader(stdin), CommandTimeout, args...)
}

// MustKubectl runs kubectl and fails the test unless it exits 0 with
// nothing on stderr; it returns stdout.
func (s *Server) MustKubectl(t testing.TB, args ...string) string {
	t.Helper()
	r := s.Kubectl(t, args...)
	if r.ExitCode != 0 || r.Stderr != "" {
		t.Fatalf("kubectl %s: %s", strings.Join(args, " "), r)
	}
	return r.Stdout
}

func (s *Server) run(t testing.TB, stdin *strings.Reader, timeout time.Duration, args ...string) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := s.command(ctx, args)
	if stdin != nil {
		cmd.Stdin = stdin
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("kubectl %s: no answer within %s\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), timeout, &stdout, &stderr)
	}
	r := Result{Stdout: stdout.String(), Stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		r.ExitCode = exit.ExitCode()
	case err != nil:
		t.Fatalf("running kubectl %s: %v", strings.Join(args, " "), err)
	}
	return r
}

func (s *Server) command(ctx context.Context, args []string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, s.Bin, append([]string{"kubectl"}, args...)...)
	cmd.Env = s.Env()
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = time.Second
	return cmd
}

// Background is a kubectl run left going, such as `get -w`, whose output
// is read while it runs.
type Background struct {
	Args   []string
	cmd    *exec.Cmd
	cancel context.CancelFunc
	stdout syncbuf.Buffer
	stderr syncbuf.Buffer
	done   chan struct{}
}

// StartKubectl starts kubectl in the background; it is killed after timeout
// and, at the latest, by t.Cleanup.
func (s *Server) StartKubectl(t testing.TB, timeout time.Duration, args ...string) *Background {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	b := &Background{Args: args, cancel: cancel, done: make(chan struct{})}
	b.cmd = s.command(ctx, args)
	b.cmd.Stdout, b.cmd.Stderr = &b.stdout, &b.stderr
	if err := b.cmd.Start(); err != nil {
		cancel()
		t.Fatalf("starting kubectl %s: %v", strings.Join(args, " "), err)
	}
	go func() {
		_ = b.cmd.Wait()
		close(b.done)
	}()
	t.Cleanup(func() { b.Stop() })
	return b
}

// WaitFor polls stdout until cond holds on it, and fails the test at
// timeout or when kubectl ends first. It returns the stdout that satisfied cond.
func (b *Background) WaitFor(t testing.TB, timeout time.Duration, what string, cond func(stdout string) bool) string {
	t.Helper()
	deadline := time.After(timeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		out := b.stdout.String()
		if cond(out) {
			return out
		}
		select {
		case <-b.done:
			if out := b.stdout.String(); cond(out) {
				return out
			}
			t.Fatalf("kubectl %s ended before %s\nstdout:\n%s\nstderr:\n%s", strings.Join(b.Args, " "), what, b.stdout.String(), b.stderr.String())
		case <-deadline:
			t.Fatalf("kubectl %s: no %s within %s\nstdout:\n%s\nstderr:\n%s", strings.Join(b.Args, " "), what, timeout, b.stdout.String(), b.stderr.String())
		case <-tick.C:
		}
	}
}

// Stop kills kubectl if it still runs and returns what it printed.
func (b *Background) Stop() (stdout, stderr string) {
	b.cancel()
	<-b.done
	return b.stdout.String(), b.stderr.String()
}

// tail returns the last n bytes of a file, or why it cannot.
func tail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err.Error()
	}
	off := max(st.Size()-n, 0)
	buf := make([]byte, st.Size()-off)
	if _, err := f.ReadAt(buf, off); err != nil {
		return err.Error()
	}
	if off > 0 {
		return fmt.Sprintf("[... %d bytes before]\n%s", off, buf)
	}
	return string(buf)
}
