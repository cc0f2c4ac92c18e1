package server

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"runtime/debug"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wasmkube/wasmkube/runtime/wasm"
)

// Preload names the module a sandbox started ahead of its pod loads while
// it waits: the image most likely to come next.
type Preload struct {
	Module string // host path of the module file
	Digest string // its image digest, the compilation cache's key
}

// preloading is the module of a Preload, loaded in the background at start
// and taken by the first container of its digest.
type preloading struct {
	digest string
	done   chan struct{} // closed once module or err is set
	module *wasm.Module
	err    error
	taken  bool // guarded by host.mu
}

// warmNice is the nice value of a sandbox waiting for its pod: loading
// its module must not slow the pods starting meanwhile.
const warmNice = 19

// startPreload loads p's module from the node's compilation cache, at
// the lowest priority until a pod takes the sandbox.
func (h *host) startPreload(p Preload) {
	pl := &preloading{digest: p.Digest, done: make(chan struct{})}
	h.preload = pl
	if err := setNice(warmNice); err != nil {
		h.log.Warn("preloading at normal priority", "err", err)
	}
	go func() {
		defer close(pl.done)
		start := time.Now()
		bin, err := os.ReadFile(p.Module)
		if err != nil {
			pl.err = fmt.Errorf("read module: %w", err)
			return
		}
		pl.module, pl.err = h.rt.Compile(context.Background(), p.Digest, bin)
		if pl.err == nil {
			h.log.Info("module preloaded", "digest", p.Digest, "fromCache", pl.module.FromCache(), "took", time.Since(start))
		}
		bin = nil
		debug.FreeOSMemory()
	}()
}

// takePreloaded returns the preloaded module of digest, once loaded, for
// the first container that asks; nil when there is none or it failed (the
// caller compiles as usual).
func (h *host) takePreloaded(ctx context.Context, digest string) *wasm.Module {
	h.mu.Lock()
	pl := h.preload
	if pl == nil || pl.digest != digest || pl.taken {
		h.mu.Unlock()
		return nil
	}
	pl.taken = true
	h.mu.Unlock()
	select {
	case <-pl.done:
	case <-ctx.Done():
		// Closed by whoever is left: the goroutine still writes it.
		go func() {
			<-pl.done
			if pl.module != nil {
				_ = pl.module.Close(context.Background())
			}
		}()
		return nil
	}
	if pl.err != nil {
		h.log.Warn("preloading failed: compiling again", "digest", digest, "err", pl.err)
		return nil
	}
	return pl.module
}

// closePreload releases a preloaded module no container took.
func (h *host) closePreload(ctx context.Context) {
	pl := h.preload
	if pl == nil || pl.taken {
		return
	}
	pl.taken = true
	<-pl.done
	if pl.module != nil {
		_ = pl.module.Close(ctx)
	}
}

// enter makes a sandbox started ahead of its pod the pod's: back to
// normal priority, and, unless path is "" (a pod of the host's network),
// every thread of the process in the network namespace at path, so that
// it lives there as one started there: its listeners, its guests'
// outbound sockets and /proc/<pid>/ns/net. It is refused once a container
// exists, whose sockets would stay behind.
func (h *host) enter(path string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.containers) > 0 {
		return statusErr(http.StatusConflict, "the sandbox has containers: it cannot change its network namespace")
	}
	if path != "" {
		f, err := os.Open(path)
		if err != nil {
			return statusErr(http.StatusBadRequest, "network namespace: %v", err)
		}
		defer f.Close()
		// setns(2) moves only the calling thread; every thread of the Go
		// runtime must follow, or a socket could be made on one left
		// behind. AllThreadsSyscall needs a binary without cgo.
		if _, _, errno := syscall.AllThreadsSyscall(unix.SYS_SETNS, f.Fd(), unix.CLONE_NEWNET, 0); errno != 0 {
			return statusErr(http.StatusInternalServerError, "enter network namespace %s: %v", path, errno)
		}
	}
	if h.preload != nil {
		if err := setNice(0); err != nil {
			h.log.Warn("normal priority", "err", err)
		}
	}
	h.log.Info("taken by its pod", "netns", path)
	return nil
}

// setNice sets the nice value of every thread: Linux keeps one per
// thread, and threads inherit it from the thread that made them.
func setNice(n int) error {
	if _, _, errno := syscall.AllThreadsSyscall(unix.SYS_SETPRIORITY, unix.PRIO_PROCESS, 0, uintptr(n)); errno != 0 {
		return fmt.Errorf("set nice %d: %w", n, errno)
	}
	return nil
}
