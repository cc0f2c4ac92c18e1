package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"time"

	"github.com/wasmkube/wasmkube/runtime/wasm"
	"github.com/wasmkube/wasmkube/sandbox/wasmhost"
)

// Config configures Serve.
type Config struct {
	// Socket is the Unix socket the agent dials; a stale one is replaced.
	Socket string
	// CacheDir is the node's compilation cache directory.
	CacheDir string
	// Log receives the process's own records; nil discards them.
	Log *slog.Logger
	// StopGrace is the grace each running guest gets when ctx ends; 0 is
	// 10 seconds.
	StopGrace time.Duration
	// Preload, for a sandbox started before its pod exists, is the
	// module to load while it waits.
	Preload *Preload
}

// host is the state of one sandbox process.
type host struct {
	rt  *wasm.Runtime
	log *slog.Logger
	pid int

	mu           sync.Mutex
	containers   map[string]*container
	preload      *preloading // nil unless started with Config.Preload
	shuttingDown bool
	idle         chan struct{} // signalled when a container ends while shutting down
}

// Serve serves the agent on cfg.Socket until ctx ends, which stops every
// running guest (each with cfg.StopGrace) first, or until a Shutdown
// request once no container runs. It returns nil on either.
func Serve(ctx context.Context, cfg Config) error {
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	grace := cfg.StopGrace
	if grace == 0 {
		grace = 10 * time.Second
	}
	if err := os.MkdirAll(filepath.Dir(cfg.Socket), 0o700); err != nil {
		return fmt.Errorf("socket directory: %w", err)
	}
	if err := os.Remove(cfg.Socket); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove stale socket: %w", err)
	}
	l, err := net.Listen("unix", cfg.Socket)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Socket, err)
	}
	defer l.Close()
	if err := os.Chmod(cfg.Socket, 0o600); err != nil {
		return fmt.Errorf("socket mode: %w", err)
	}
	var opts []wasm.Option
	if cfg.CacheDir != "" {
		opts = append(opts, wasm.WithCacheDir(cfg.CacheDir))
	}
	h := &host{
		rt:         wasm.New(opts...),
		log:        log,
		pid:        os.Getpid(),
		containers: map[string]*container{},
		idle:       make(chan struct{}, 1),
	}
	if cfg.Preload != nil {
		h.startPreload(*cfg.Preload)
	}
	srv := &http.Server{Handler: h.routes(), ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(l) }()
	log.Info("serving", "socket", cfg.Socket, "pid", h.pid)

	var result error
	for done := false; !done; {
		select {
		case <-ctx.Done():
			log.Info("stopping every guest", "grace", grace)
			h.stopAll(grace)
			done = true
		case err := <-serveErr:
			result = fmt.Errorf("serve %s: %w", cfg.Socket, err)
			h.stopAll(grace)
			done = true
		case <-h.idle:
			done = h.quiescent()
			if done {
				log.Info("shut down: nothing runs")
			}
		}
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutCtx)
	h.closeAll()
	return result
}

// quiescent reports whether a shutdown was asked and nothing runs.
func (h *host) quiescent() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.shuttingDown {
		return false
	}
	for _, c := range h.containers {
		if c.running() {
			return false
		}
	}
	return true
}

// poke wakes Serve to check quiescent.
func (h *host) poke() {
	select {
	case h.idle <- struct{}{}:
	default:
	}
}

func (h *host) stopAll(grace time.Duration) {
	h.mu.Lock()
	cs := make([]*container, 0, len(h.containers))
	for _, c := range h.containers {
		cs = append(cs, c)
	}
	h.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Go(func() {
			if err := c.stop(grace); err != nil {
				h.log.Warn("stop", "id", c.spec.ID, "err", err)
			}
		})
	}
	wg.Wait()
}

func (h *host) closeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	ctx := context.Background()
	for id, c := range h.containers {
		c.close(ctx)
		delete(h.containers, id)
	}
	h.closePreload(ctx)
	_ = h.rt.Close(ctx)
}

// httpError is an error with the status it is answered with.
type httpError struct {
	status int
	err    error
}

func (e *httpError) Error() string { return e.err.Error() }
func (e *httpError) Unwrap() error { return e.err }

func statusErr(status int, format string, args ...any) error {
	return &httpError{status: status, err: fmt.Errorf(format, args...)}
}

func (h *host) routes() http.Handler {
	mux := http.NewServeMux()
	handle := func(pattern string, fn func(w http.ResponseWriter, r *http.Request) (any, error)) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			defer func() {
				if p := recover(); p != nil {
					if p == http.ErrAbortHandler {
						panic(p)
					}
					h.log.Error("handler panic", "path", r.URL.Path, "panic", p, "stack", string(debug.Stack()))
					writeError(w, statusErr(http.StatusInternalServerError, "internal error: %v", p))
				}
			}()
			out, err := fn(w, r)
			switch {
			case err != nil:
				writeError(w, err)
			case out == hijacked:
			case out != nil:
				w.Header().Set("Content-Type", "application/json")
				_ = json.NewEncoder(w).Encode(out)
			default:
				w.WriteHeader(http.StatusNoContent)
			}
		})
	}
	handle("GET "+wasmhost.PathPing, func(http.ResponseWriter, *http.Request) (any, error) {
		return wasmhost.Ping{Pid: h.pid}, nil
	})
	handle("GET "+wasmhost.PathContainers, func(http.ResponseWriter, *http.Request) (any, error) {
		return h.list(), nil
	})
	handle("POST "+wasmhost.PathContainers, func(_ http.ResponseWriter, r *http.Request) (any, error) {
		var spec wasmhost.ContainerSpec
		if err := decode(r, &spec); err != nil {
			return nil, err
		}
		return h.create(r.Context(), spec)
	})
	withContainer := func(fn func(w http.ResponseWriter, r *http.Request, c *container) (any, error)) func(http.ResponseWriter, *http.Request) (any, error) {
		return func(w http.ResponseWriter, r *http.Request) (any, error) {
			c, err := h.get(r.PathValue("id"))
			if err != nil {
				return nil, err
			}
			return fn(w, r, c)
		}
	}
	handle("GET "+wasmhost.PathContainers+"/{id}", withContainer(func(_ http.ResponseWriter, _ *http.Request, c *container) (any, error) {
		return c.state(), nil
	}))
	handle("POST "+wasmhost.PathContainers+"/{id}/start", withContainer(func(_ http.ResponseWriter, _ *http.Request, c *container) (any, error) {
		h.mu.Lock()
		down := h.shuttingDown
		h.mu.Unlock()
		if down {
			return nil, statusErr(http.StatusConflict, "sandbox is shutting down")
		}
		if err := c.start(); err != nil {
			return nil, err
		}
		return c.state(), nil
	}))
	handle("GET "+wasmhost.PathContainers+"/{id}/wait", withContainer(func(_ http.ResponseWriter, r *http.Request, c *container) (any, error) {
		return c.wait(r.Context())
	}))
	handle("POST "+wasmhost.PathContainers+"/{id}/stop", withContainer(func(_ http.ResponseWriter, r *http.Request, c *container) (any, error) {
		var req wasmhost.StopRequest
		if err := decode(r, &req); err != nil {
			return nil, err
		}
		if err := c.stop(time.Duration(req.GraceMillis) * time.Millisecond); err != nil {
			return nil, err
		}
		return c.state(), nil
	}))
	handle("DELETE "+wasmhost.PathContainers+"/{id}", func(_ http.ResponseWriter, r *http.Request) (any, error) {
		return nil, h.remove(r.Context(), r.PathValue("id"))
	})
	handle("POST "+wasmhost.PathContainers+"/{id}/exec", withContainer(func(w http.ResponseWriter, r *http.Request, c *container) (any, error) {
		return h.exec(w, r, c)
	}))
	handle("POST "+wasmhost.PathEnter, func(_ http.ResponseWriter, r *http.Request) (any, error) {
		var req wasmhost.EnterRequest
		if err := decode(r, &req); err != nil {
			return nil, err
		}
		return nil, h.enter(req.Netns)
	})
	handle("POST "+wasmhost.PathShutdown, func(http.ResponseWriter, *http.Request) (any, error) {
		h.mu.Lock()
		h.shuttingDown = true
		h.mu.Unlock()
		h.log.Info("shutdown asked")
		h.poke()
		return nil, nil
	})
	return mux
}

// hijacked is the answer of a handler that took the connection over.
var hijacked = new(struct{})

func decode(r *http.Request, v any) error {
	if r.ContentLength == 0 {
		return nil
	}
	if err := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 1<<20)).Decode(v); err != nil {
		return statusErr(http.StatusBadRequest, "decode request: %v", err)
	}
	return nil
}

func writeError(w http.ResponseWriter, err error) {
	status := http.StatusInternalServerError
	var he *httpError
	switch {
	case errors.As(err, &he):
		status = he.status
	case errors.Is(err, wasmhost.ErrNotFound):
		status = http.StatusNotFound
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(wasmhost.Error{Message: err.Error()})
}

func (h *host) get(id string) (*container, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	c, ok := h.containers[id]
	if !ok {
		return nil, fmt.Errorf("container %q: %w", id, wasmhost.ErrNotFound)
	}
	return c, nil
}

func (h *host) list() []wasmhost.State {
	h.mu.Lock()
	cs := make([]*container, 0, len(h.containers))
	for _, c := range h.containers {
		cs = append(cs, c)
	}
	h.mu.Unlock()
	out := make([]wasmhost.State, 0, len(cs))
	for _, c := range cs {
		out = append(out, c.state())
	}
	return out
}

func (h *host) remove(ctx context.Context, id string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	c, ok := h.containers[id]
	if !ok {
		return fmt.Errorf("container %q: %w", id, wasmhost.ErrNotFound)
	}
	if c.running() {
		return statusErr(http.StatusConflict, "container %q is running: stop it first", id)
	}
	c.close(ctx)
	delete(h.containers, id)
	debug.FreeOSMemory()
	return nil
}
