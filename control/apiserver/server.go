package apiserver

import (
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/go-chi/chi/v5"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"

	"github.com/wasmkube/wasmkube/control/auth"
	"github.com/wasmkube/wasmkube/control/openapi"
	"github.com/wasmkube/wasmkube/control/printers"
	"github.com/wasmkube/wasmkube/control/registry"
)

// Config is what the API server is built from.
type Config struct {
	// Stores serve the resources, one each.
	Stores []*registry.Store
	// Authenticator and Authorizer guard every request but the public ones.
	Authenticator auth.Authenticator
	Authorizer    auth.Authorizer
	// Health checks are run by /livez, /readyz and /healthz.
	Health *Health
	// ExternalAddress is host:port as clients reach the server.
	ExternalAddress string
	// Now is the clock for table ages; nil means time.Now.
	Now func() time.Time
}

// Server is the API's HTTP handler.
type Server struct {
	cfg           Config
	stores        map[schema.GroupVersionResource]*registry.Store
	discovery     *discovery
	printers      *printers.Printers
	paramCodec    runtime.ParameterCodec
	handler       http.Handler
	openapi       *openapi.Specs
	fieldManagers fieldManagers
}

// New builds the handler for cfg.
func New(cfg Config) (*Server, error) {
	if cfg.Authenticator == nil || cfg.Authorizer == nil {
		return nil, fmt.Errorf("apiserver: an authenticator and an authorizer are required")
	}
	if cfg.Health == nil {
		cfg.Health = NewHealth()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	params := runtime.NewScheme()
	metav1.AddToGroupVersion(params, metav1.SchemeGroupVersion)
	s := &Server{
		cfg:        cfg,
		stores:     map[schema.GroupVersionResource]*registry.Store{},
		discovery:  newDiscovery(cfg.Stores),
		printers:   printers.New(cfg.Now),
		paramCodec: runtime.NewParameterCodec(params),
	}
	for _, st := range cfg.Stores {
		gvr := st.Strategy.Kind.GroupVersion().WithResource(st.Strategy.Resource)
		if _, dup := s.stores[gvr]; dup {
			return nil, fmt.Errorf("apiserver: %s is served twice", gvr)
		}
		s.stores[gvr] = st
	}
	_ = serializer.CodecFactory{} // parameter decoding needs only the scheme
	var err error
	if s.openapi, err = newOpenAPI(cfg.Stores); err != nil {
		return nil, err
	}
	if s.fieldManagers, err = newFieldManagers(s.openapi.Schemas(), cfg.Stores); err != nil {
		return nil, err
	}
	s.handler = s.routes()
	return s, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Store returns the store serving a group version resource, for in-process
// bootstrap work, or nil.
func (s *Server) Store(gvr schema.GroupVersionResource) *registry.Store { return s.stores[gvr] }

func (s *Server) routes() http.Handler {
	r := chi.NewRouter()
	r.Use(recoverPanics)
	r.Use(auth.Middleware(s.cfg.Authenticator, s.cfg.Authorizer, auth.PublicInfoPath, attributesOf))
	s.cfg.Health.mount(r)
	r.Get("/version", serveVersion)
	r.Get("/version/", serveVersion)
	r.Get("/api", func(w http.ResponseWriter, r *http.Request) { s.discovery.serveCore(w, r, s.cfg.ExternalAddress) })
	r.Get("/apis", s.discovery.serveGroups)
	r.Handle("/openapi/*", s.openapi.Handler())
	r.HandleFunc("/api/*", s.serveAPI)
	r.HandleFunc("/apis/*", s.serveAPI)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, notFoundPath(r.URL.Path))
	})
	return r
}

// serveAPI serves everything below /api/ and /apis/: discovery documents of
// a group or version, or a resource request.
func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	info := parseRequestInfo(r)
	if !info.IsResource {
		parts := splitPath(r.URL.Path)
		var ok bool
		switch {
		case r.Method != http.MethodGet:
		case parts[0] == "api" && len(parts) == 2:
			ok = s.discovery.serveGroupOrVersion(w, "", parts[1])
		case parts[0] == "apis" && len(parts) == 2:
			ok = s.discovery.serveGroupOrVersion(w, parts[1], "")
		case parts[0] == "apis" && len(parts) == 3:
			ok = s.discovery.serveGroupOrVersion(w, parts[1], parts[2])
		}
		if !ok {
			writeError(w, notFoundPath(r.URL.Path))
		}
		return
	}
	s.serveResource(w, r, info)
}

// attributesOf describes a request to the authorizer.
func attributesOf(r *http.Request) auth.Attributes {
	info := parseRequestInfo(r)
	if !info.IsResource {
		return auth.NonResourceAttributes(r)
	}
	return auth.Attributes{
		Verb: info.Verb, Namespace: info.Namespace, APIGroup: info.Group, Resource: info.Resource,
		Subresource: info.Subresource, Name: info.Name, Path: r.URL.Path, ResourceRequest: true,
	}
}

// recoverPanics turns a panic in a handler into a 500 Status: a bad request
// must never take the server down.
func recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				slog.Error("panic serving request", "method", r.Method, "path", r.URL.Path, "panic", v, "stack", string(debug.Stack()))
				writeError(w, fmt.Errorf("internal error while serving %s %s", r.Method, r.URL.Path))
			}
		}()
		next.ServeHTTP(w, r)
	})
}
