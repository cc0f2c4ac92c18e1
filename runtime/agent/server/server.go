package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/wasmkube/wasmkube/runtime/agent/pods"
	"github.com/wasmkube/wasmkube/runtime/oci"
)

// Pods finds what the node runs.
type Pods interface {
	LookupContainer(namespace, pod, container string, previous bool) (pods.ContainerRef, error)
	PodNetns(namespace, pod string) (string, types.UID, error)
}

// Runtime runs processes in containers and reports their state.
type Runtime interface {
	Status(ctx context.Context, id string) (oci.State, error)
	Exec(ctx context.Context, id string, o oci.ExecOptions) (int, error)
	AttachStreams(ctx context.Context, id string, o oci.AttachOptions) error
}

// Config is the server's wiring.
type Config struct {
	// Listener is where to serve, from Listen.
	Listener net.Listener
	// CertDir keeps the self-signed serving certificate.
	CertDir string
	// Hostname and IPs go into the serving certificate.
	Hostname string
	IPs      []net.IP
	// ClientCAs verify client certificates: the cluster CA.
	ClientCAs *x509.CertPool
	Pods      Pods
	Runtime   Runtime
	// StreamIdleTimeout ends a stream with no traffic; default 4h, the
	// kubelet's.
	StreamIdleTimeout time.Duration
	Log               *slog.Logger
}

// Server is the agent's HTTPS endpoint.
type Server struct {
	cfg      Config
	listener net.Listener
	http     *http.Server
}

// Listen opens the server's port (0 picks a free one) ahead of the rest of
// the agent, so the Node can report it from its first status.
func Listen(host string, port int) (net.Listener, error) {
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("server: listen on %s: %w", addr, err)
	}
	return ln, nil
}

// New makes the server on cfg.Listener; Serve serves.
func New(cfg Config) (*Server, error) {
	if cfg.Listener == nil || cfg.Pods == nil || cfg.Runtime == nil || cfg.ClientCAs == nil || cfg.CertDir == "" {
		return nil, errors.New("server: a listener, pods, runtime, client CAs and a certificate dir are required")
	}
	if cfg.StreamIdleTimeout == 0 {
		cfg.StreamIdleTimeout = 4 * time.Hour
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	cert, err := servingCert(cfg.CertDir, cfg.Hostname, cfg.IPs)
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	s := &Server{cfg: cfg, listener: cfg.Listener}
	s.http = &http.Server{
		Handler: guard(recoverPanics(cfg.Log, s.routes())),
		TLSConfig: &tls.Config{
			Certificates: []tls.Certificate{cert},
			ClientAuth:   tls.VerifyClientCertIfGiven,
			ClientCAs:    cfg.ClientCAs,
			MinVersion:   tls.VersionTLS12,
			// No h2: the streaming protocols upgrade an HTTP/1.1
			// connection.
			NextProtos: []string{"http/1.1"},
		},
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          slog.NewLogLogger(cfg.Log.Handler(), slog.LevelDebug),
	}
	return s, nil
}

// Port is the port the server listens on.
func (s *Server) Port() int { return s.listener.Addr().(*net.TCPAddr).Port }

// Serve serves until ctx ends; open streams are cut then.
func (s *Server) Serve(ctx context.Context) error {
	s.http.BaseContext = func(net.Listener) context.Context { return ctx }
	go func() {
		<-ctx.Done()
		_ = s.http.Close()
	}()
	if err := s.http.ServeTLS(s.listener, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("server: %w", err)
	}
	return nil
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /containerLogs/{ns}/{pod}/{container}", s.containerLogs)
	for _, m := range []string{"GET", "POST"} {
		mux.HandleFunc(m+" /exec/{ns}/{pod}/{container}", s.exec)
		mux.HandleFunc(m+" /exec/{ns}/{pod}/{uid}/{container}", s.exec)
		mux.HandleFunc(m+" /attach/{ns}/{pod}/{container}", s.attach)
		mux.HandleFunc(m+" /attach/{ns}/{pod}/{uid}/{container}", s.attach)
		mux.HandleFunc(m+" /portForward/{ns}/{pod}", s.portForward)
		mux.HandleFunc(m+" /portForward/{ns}/{pod}/{uid}", s.portForward)
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok")) })
	return mux
}

// recoverPanics keeps one request's bug from taking the agent down.
func recoverPanics(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				log.Error("server: panic serving request", "path", r.URL.Path, "panic", v)
				http.Error(w, "internal error", http.StatusInternalServerError)
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// target is the container a request names, as the node runs it.
type target struct {
	pods.ContainerRef
	ns, pod, container string
}

// container finds the container named by the request's {ns}, {pod} and
// {container}, or answers the request with why it cannot.
func (s *Server) container(w http.ResponseWriter, r *http.Request, previous bool) (target, bool) {
	t := target{ns: r.PathValue("ns"), pod: r.PathValue("pod"), container: r.PathValue("container")}
	ref, err := s.cfg.Pods.LookupContainer(t.ns, t.pod, t.container, previous)
	if err != nil {
		http.Error(w, err.Error(), lookupStatus(err))
		return t, false
	}
	t.ContainerRef = ref
	return t, true
}

// lookupStatus is the HTTP status for a failed lookup.
func lookupStatus(err error) int {
	switch {
	case errors.Is(err, pods.ErrPodNotFound):
		return http.StatusNotFound
	case errors.Is(err, pods.ErrNotFound):
		return http.StatusBadRequest
	}
	return http.StatusInternalServerError
}

func parseBool(q string) (bool, error) {
	if q == "" {
		return false, nil
	}
	return strconv.ParseBool(q)
}
