package apiserver

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Check is one named health check, such as "etcd".
type Check struct {
	Name string
	Func func(ctx context.Context) error
	// ReadyOnly checks count for /readyz but not /livez: a process whose
	// storage is unreachable is not ready, yet restarting it would not help.
	ReadyOnly bool
}

// Health serves /livez, /readyz and /healthz the way kube-apiserver does:
// "ok" when every check passes, a 500 listing "[-]name failed: reason
// withheld" otherwise, each check also reachable as /livez/<name>, and the
// whole report with ?verbose.
type Health struct {
	mu           sync.RWMutex
	checks       []Check
	shuttingDown atomic.Bool
}

// NewHealth starts with the ping check, which always passes.
func NewHealth() *Health {
	return &Health{checks: []Check{{Name: "ping", Func: func(context.Context) error { return nil }}}}
}

// Add registers a check.
func (h *Health) Add(c Check) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.checks = append(h.checks, c)
}

// ShuttingDown makes /readyz fail, so that load balancers drain the server
// before it stops.
func (h *Health) ShuttingDown() { h.shuttingDown.Store(true) }

func (h *Health) mount(r chi.Router) {
	for _, kind := range []string{"livez", "readyz", "healthz"} {
		r.Get("/"+kind, h.serve(kind, ""))
		r.Get("/"+kind+"/{check}", func(w http.ResponseWriter, r *http.Request) {
			h.serve(kind, chi.URLParam(r, "check"))(w, r)
		})
	}
}

func (h *Health) selected(kind, only string) []Check {
	h.mu.RLock()
	defer h.mu.RUnlock()
	var out []Check
	for _, c := range h.checks {
		if (only == "" || c.Name == only) && !(c.ReadyOnly && kind == "livez") {
			out = append(out, c)
		}
	}
	if kind == "readyz" && (only == "" || only == "shutdown") {
		out = append(out, Check{Name: "shutdown", Func: func(context.Context) error {
			if h.shuttingDown.Load() {
				return fmt.Errorf("process is shutting down")
			}
			return nil
		}})
	}
	return out
}

func (h *Health) serve(kind, only string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		checks := h.selected(kind, only)
		if only != "" && len(checks) == 0 {
			writeError(w, notFoundPath(r.URL.Path))
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		var report strings.Builder
		failed := false
		for _, c := range checks {
			if err := c.Func(ctx); err != nil {
				failed = true
				fmt.Fprintf(&report, "[-]%s failed: reason withheld\n", c.Name)
				continue
			}
			fmt.Fprintf(&report, "[+]%s ok\n", c.Name)
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		if failed {
			w.WriteHeader(http.StatusInternalServerError)
			fmt.Fprintf(w, "%s%s check failed\n", report.String(), kind)
			return
		}
		if _, verbose := r.URL.Query()["verbose"]; verbose {
			fmt.Fprintf(w, "%s%s check passed\n", report.String(), kind)
			return
		}
		fmt.Fprint(w, "ok")
	}
}

// notFoundPath is the 404 kube-apiserver gives for a path it does not serve.
func notFoundPath(path string) error {
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status: metav1.StatusFailure, Code: http.StatusNotFound, Reason: metav1.StatusReasonNotFound,
		Message: "the server could not find the requested resource", Details: &metav1.StatusDetails{},
	}}
}
