package wasmpod

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/wasmkube/wasmkube/sandbox/wasmhost"
)

// warmPrefix starts the names of sandboxes started ahead of their pods;
// a pod's sandbox is named by its uid, which never starts so.
const warmPrefix = "warm-"

// warmStopTimeout bounds how long Close waits for an idle sandbox to end.
const warmStopTimeout = 5 * time.Second

// warmPool keeps, for each of the images whose pods started last on the
// node, one sandbox process started ahead of need, with the image's module
// already loaded from the compilation cache. Loading a module is most of
// a sandbox's start (a Go net/http module: 150 ms, mostly wazero decoding
// and validating 9 MB before it looks in its cache); a pod that finds a
// warm sandbox of its image takes it, moves it into its network namespace
// and cgroup, and starts its guest at once. The sandbox's replacement
// loads in the background, so a burst of pods drains the pool and its
// later pods start as without it.
//
// An idle warm sandbox lives in the agent's own network namespace and
// cgroup: what it allocates while loading stays charged there after it
// moves (cgroup2 does not move charges), a few MiB per sandbox.
type warmPool struct {
	size     int // idle sandboxes kept, one per image
	launcher launcher
	log      *slog.Logger

	mu       sync.Mutex
	idle     map[string]*warmProc // by image digest
	recent   []string             // image digests, most recently wanted last
	starting map[string]bool
	closed   bool
	// background counts the starts and stops running apart from the
	// pods' calls; close waits for them. Nothing is added once closed.
	background sync.WaitGroup
}

// warmProc is an idle sandbox process: its socket and log are named after
// it until a pod takes it.
type warmProc struct {
	name   string
	pid    int
	exited <-chan error
}

func newWarmPool(size int, l launcher, log *slog.Logger) *warmPool {
	return &warmPool{size: size, launcher: l, log: log, idle: map[string]*warmProc{}, starting: map[string]bool{}}
}

// take removes the idle sandbox of digest from the pool, if there is one.
func (p *warmPool) take(digest string) *warmProc {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	w := p.idle[digest]
	delete(p.idle, digest)
	return w
}

// want records that a pod of m's image started, and starts a sandbox for
// the image's next pod in the background unless one is idle or starting.
// The least recently wanted image loses its idle sandbox when the pool is
// over its size.
func (p *warmPool) want(m Module) {
	if p == nil || p.size <= 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	digest := m.ImageDigest
	p.recent = append(slices.DeleteFunc(p.recent, func(d string) bool { return d == digest }), digest)
	if len(p.recent) > p.size {
		for _, old := range p.recent[:len(p.recent)-p.size] {
			if w := p.idle[old]; w != nil {
				delete(p.idle, old)
				p.background.Go(func() { p.stop(w) })
			}
		}
		p.recent = slices.Clone(p.recent[len(p.recent)-p.size:])
	}
	if p.idle[digest] != nil || p.starting[digest] {
		return
	}
	p.starting[digest] = true
	p.background.Go(func() { p.spawn(m) })
}

// spawn starts a warm sandbox for m's image and makes it the image's idle
// one, unless the pool closed or stopped wanting the image meanwhile.
func (p *warmPool) spawn(m Module) {
	name := warmPrefix + randomSuffix()
	cmd, exited, err := p.launcher.launch(name, "", nil, "--preload-module", m.Path, "--preload-digest", m.ImageDigest)
	p.mu.Lock()
	delete(p.starting, m.ImageDigest)
	if err != nil {
		p.mu.Unlock()
		p.log.Warn("wasmpod: start a warm sandbox", "image", m.ImageDigest, "err", err)
		return
	}
	w := &warmProc{name: name, pid: cmd.Process.Pid, exited: exited}
	keep := !p.closed && slices.Contains(p.recent, m.ImageDigest) && p.idle[m.ImageDigest] == nil
	if keep {
		p.idle[m.ImageDigest] = w
	}
	p.mu.Unlock()
	if !keep {
		p.stop(w)
	}
}

// stop ends an idle sandbox (it has no container: SIGTERM ends it at once)
// and removes its files.
func (p *warmPool) stop(w *warmProc) {
	if err := syscall.Kill(w.pid, syscall.SIGTERM); err == nil {
		select {
		case <-w.exited:
		case <-time.After(warmStopTimeout):
			_ = syscall.Kill(w.pid, syscall.SIGKILL)
			<-w.exited
		}
	}
	p.launcher.removeFiles(w.name)
}

// forget ends the idle sandbox of an image that is gone.
func (p *warmPool) forget(digest string) {
	if w := p.take(digest); w != nil {
		p.stop(w)
	}
}

// close ends every idle sandbox and any still starting.
func (p *warmPool) close() {
	if p == nil {
		return
	}
	p.mu.Lock()
	p.closed = true
	idle := p.idle
	p.idle = map[string]*warmProc{}
	p.mu.Unlock()
	p.background.Wait()
	var wg sync.WaitGroup
	for _, w := range idle {
		wg.Go(func() { p.stop(w) })
	}
	wg.Wait()
}

// adoptWarm makes w the sandbox of sb's pod: it waits for w to answer,
// moves it into the pod's network namespace and cgroup, and renames its
// socket and log after the pod. On error w is killed, and the caller
// starts a sandbox of its own.
func (r *Runtime) adoptWarm(ctx context.Context, sb *sandboxProc, netns string, w *warmProc) (err error) {
	l := r.launcher()
	warmSock := socketPath(r.cfg.Dir, w.name)
	defer func() {
		if err != nil {
			_ = syscall.Kill(w.pid, syscall.SIGKILL)
			l.removeFiles(w.name)
		}
	}()
	c, err := dialNew(ctx, warmSock, w.exited)
	if err != nil {
		return fmt.Errorf("warm sandbox %s: %w", w.name, err)
	}
	defer c.Close()
	if err := c.Enter(ctx, netns); err != nil {
		return fmt.Errorf("warm sandbox %s: %w", w.name, err)
	}
	r.place(sb, w.pid)
	sock := socketPath(r.cfg.Dir, sb.group)
	if err := os.Rename(warmSock, sock); err != nil {
		return fmt.Errorf("warm sandbox %s: %w", w.name, err)
	}
	_ = os.Rename(logPath(r.cfg.Dir, w.name), logPath(r.cfg.Dir, sb.group))
	if sb.client, err = wasmhost.Dial(ctx, sock); err != nil {
		_ = os.Remove(sock)
		return fmt.Errorf("warm sandbox %s: %w", w.name, err)
	}
	return nil
}

// stopWarmLeftovers ends the idle sandboxes an earlier agent left: they
// have no container, and the pool starts its own.
func (r *Runtime) stopWarmLeftovers(ctx context.Context, socks []string) []string {
	var rest []string
	for _, sock := range socks {
		name := strings.TrimSuffix(filepath.Base(sock), ".sock")
		if !strings.HasPrefix(name, warmPrefix) {
			rest = append(rest, sock)
			continue
		}
		if c, err := wasmhost.Dial(ctx, sock); err == nil {
			if err := c.Shutdown(ctx); err != nil {
				r.cfg.Log.Warn("wasmpod: shut down a warm sandbox left by an earlier agent", "sandbox", name, "err", err)
				if pid := c.Pid(); pid > 0 {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}
			c.Close()
		}
		r.launcher().removeFiles(name)
	}
	return rest
}

func randomSuffix() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
