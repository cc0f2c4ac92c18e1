package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"

	"github.com/wasmkube/wasmkube/control/allocator"
	"github.com/wasmkube/wasmkube/control/apiserver"
	"github.com/wasmkube/wasmkube/control/auth"
	"github.com/wasmkube/wasmkube/control/etcd"
	"github.com/wasmkube/wasmkube/control/registry"
	"github.com/wasmkube/wasmkube/control/resources"
	"github.com/wasmkube/wasmkube/control/storage"
	"github.com/wasmkube/wasmkube/internal/pki"
)

// Options are `wasmkube server`'s flags.
type Options struct {
	DataDir               string
	BindAddress           string
	SecurePort            int
	EtcdServers           []string
	ServiceClusterIPRange string
	ClusterCIDR           string
	// NodeCIDRMaskSize is the prefix length of the pod CIDR each node is
	// given out of ClusterCIDR; 0 is 24 for IPv4, 64 for IPv6.
	NodeCIDRMaskSize int
	// LoadBalancerIPRange is where LoadBalancer Service addresses come from
	// (a CIDR or "first-last"); empty leaves such Services pending.
	LoadBalancerIPRange string
	// CompactionInterval is how often etcd history is compacted (default 5m).
	CompactionInterval time.Duration
}

// Server is a running control plane.
type Server struct {
	opts       Options
	etcd       *etcd.Embedded
	client     *clientv3.Client
	backend    *storage.Backend
	api        *apiserver.Server
	health     *apiserver.Health
	http       *http.Server
	listener   net.Listener
	kubeconfig string
	url        string
	loopback   *rest.Config
	serviceIPs *allocator.IPRange
	cancel     context.CancelFunc
	done       chan struct{}
}

// Start brings the control plane up and returns once it serves requests.
func Start(ctx context.Context, opts Options) (_ *Server, err error) {
	if opts.DataDir == "" {
		return nil, errors.New("server: --data-dir is required")
	}
	if opts.BindAddress == "" {
		opts.BindAddress = "127.0.0.1"
	}
	if opts.CompactionInterval == 0 {
		opts.CompactionInterval = 5 * time.Minute
	}
	if err := os.MkdirAll(opts.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("server: creating data dir: %w", err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	s := &Server{opts: opts, cancel: cancel, done: make(chan struct{}), health: apiserver.NewHealth()}
	defer func() {
		if err != nil {
			if s.http != nil {
				_ = s.http.Close()
			}
			s.closeStorage()
			cancel()
		}
	}()
	if err := s.startStorage(ctx); err != nil {
		return nil, err
	}
	deps, err := s.newAllocators()
	if err != nil {
		return nil, err
	}
	kubelet := &resources.Kubelet{}
	deps.Kubelet = kubelet
	stores := s.newStores(deps)
	tlsConfig, authn, err := s.prepareTLS()
	if err != nil {
		return nil, err
	}
	if err := s.connectKubelets(kubelet, stores); err != nil {
		return nil, err
	}
	s.api, err = apiserver.New(apiserver.Config{
		Stores:          stores,
		Authenticator:   authn,
		Authorizer:      auth.NewAuthorizer(nodePolicy{}),
		Health:          s.health,
		ExternalAddress: s.listener.Addr().String(),
	})
	if err != nil {
		return nil, err
	}
	port := s.listener.Addr().(*net.TCPAddr).Port
	if err := bootstrap(ctx, s.api, s.serviceIPs.Nth(apiServiceOrdinal).String(), s.DNSServiceIP().String(), port); err != nil {
		return nil, err
	}
	requests, cancelRequests := context.WithCancel(context.Background())
	s.http = &http.Server{
		Handler:           s.api,
		BaseContext:       func(net.Listener) context.Context { return requests },
		TLSConfig:         tlsConfig,
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          slogErrorLog(),
	}
	// Ending the requests' context on shutdown ends open watches, which would
	// otherwise hold Shutdown until its deadline.
	s.http.RegisterOnShutdown(cancelRequests)
	go func() {
		defer close(s.done)
		if err := s.http.ServeTLS(s.listener, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			slog.Error("API server stopped", "err", err)
		}
	}()
	go s.backend.RunCompactor(runCtx, opts.CompactionInterval)
	slog.Info("API server serving", "url", s.url, "kubeconfig", s.kubeconfig)
	return s, nil
}

func (s *Server) startStorage(ctx context.Context) error {
	var client *clientv3.Client
	var backendOpts []storage.Option
	if endpoints := s.opts.EtcdServers; len(endpoints) > 0 {
		c, err := etcd.NewClient(endpoints)
		if err != nil {
			return fmt.Errorf("server: connecting to etcd %v: %w", endpoints, err)
		}
		client = c
	} else {
		e, err := etcd.Start(ctx, etcd.Config{
			DataDir: filepath.Join(s.opts.DataDir, "etcd"),
			LogFile: filepath.Join(s.opts.DataDir, "etcd.log"),
		})
		if err != nil {
			return fmt.Errorf("server: starting embedded etcd: %w", err)
		}
		s.etcd, client = e, e.Client()
		backendOpts = append(backendOpts, storage.WithWatchers(func() clientv3.Watcher { return e.NewWatcher(client) }))
	}
	s.client = client
	s.backend = storage.NewBackend(client, backendOpts...)
	s.health.Add(apiserver.Check{Name: "etcd", Func: func(ctx context.Context) error { return etcd.Check(ctx, client) }})
	return nil
}

func (s *Server) newStores(deps resources.Deps) []*registry.Store {
	var namespaces *registry.Store
	nsGetter := func(ctx context.Context, name string) (*corev1.Namespace, error) {
		obj, err := namespaces.GetCached(ctx, "", name)
		if err != nil {
			return nil, err
		}
		return obj.(*corev1.Namespace), nil
	}
	var classes *registry.Store
	deps.StorageClasses = func(ctx context.Context) ([]*storagev1.StorageClass, error) {
		return listStorageClasses(ctx, classes)
	}
	var stores []*registry.Store
	for _, strategy := range resources.All(deps) {
		st := registry.NewStore(strategy, s.backend, registry.WithNamespaceGetter(nsGetter))
		if strategy.Kind.Group == "" && strategy.Resource == "namespaces" {
			namespaces = st
		}
		if strategy.Kind.Group == storagev1.GroupName && strategy.Resource == "storageclasses" {
			classes = st
		}
		stores = append(stores, st)
	}
	return stores
}

// prepareTLS loads or creates the CA, the serving certificate and the admin
// credentials, writes admin.kubeconfig, and opens the listener.
func (s *Server) prepareTLS() (*tls.Config, auth.Authenticator, error) {
	tlsDir := filepath.Join(s.opts.DataDir, "tls")
	ca, err := pki.LoadOrCreateCA(tlsDir, "wasmkube-ca")
	if err != nil {
		return nil, nil, err
	}
	var ips []net.IP
	if ip := net.ParseIP(s.opts.BindAddress); ip != nil && !ip.IsUnspecified() {
		ips = append(ips, ip)
	}
	certFile, keyFile, err := ca.LoadOrCreateServing(tlsDir, "apiserver", []string{"kubernetes", "kubernetes.default", "kubernetes.default.svc"}, ips)
	if err != nil {
		return nil, nil, err
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("server: loading serving certificate: %w", err)
	}
	tokens, err := auth.NewTokens(filepath.Join(s.opts.DataDir, "tokens.csv"))
	if err != nil {
		return nil, nil, err
	}
	addr := net.JoinHostPort(s.opts.BindAddress, strconv.Itoa(s.opts.SecurePort))
	s.listener, err = net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("server: listening on %s: %w", addr, err)
	}
	host := s.opts.BindAddress
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	s.url = "https://" + net.JoinHostPort(host, strconv.Itoa(s.listener.Addr().(*net.TCPAddr).Port))
	certPEM, keyPEM, err := ca.LoadOrCreateClient(tlsDir, "admin", "admin", []string{auth.GroupMasters})
	if err != nil {
		return nil, nil, err
	}
	s.kubeconfig = filepath.Join(s.opts.DataDir, "admin.kubeconfig")
	if err := pki.WriteKubeconfig(s.kubeconfig, s.url, ca.CertPEM, certPEM, keyPEM, "admin"); err != nil {
		return nil, nil, err
	}
	s.loopback = &rest.Config{
		Host:            s.url,
		TLSClientConfig: rest.TLSClientConfig{CAData: ca.CertPEM, CertData: certPEM, KeyData: keyPEM},
		QPS:             -1, // in-process components are not rate limited
	}
	cfg := &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequestClientCert, // the x509 authenticator verifies, so a foreign cert gets 401 as upstream
		ClientCAs:    ca.Pool(),
		MinVersion:   tls.VersionTLS12,
		NextProtos:   []string{"h2", "http/1.1"},
	}
	return cfg, auth.Union(auth.NewX509(ca.Pool()), tokens), nil
}

// URL is the server's https address.
func (s *Server) URL() string { return s.url }

// KubeconfigPath is the admin kubeconfig written at start.
func (s *Server) KubeconfigPath() string { return s.kubeconfig }

// LoopbackConfig is a client-go config with admin rights, for components
// running in the same process.
func (s *Server) LoopbackConfig() *rest.Config { return rest.CopyConfig(s.loopback) }

// Backend is the storage backend, for tests that compact etcd.
func (s *Server) Backend() *storage.Backend { return s.backend }

// Store returns the store of a resource, for in-process bootstrap work.
func (s *Server) Store(gvr schema.GroupVersionResource) *registry.Store { return s.api.Store(gvr) }

// Shutdown stops serving: /readyz fails first, in-flight requests finish
// (watches are cut at the deadline), then storage closes.
func (s *Server) Shutdown(ctx context.Context) error {
	s.health.ShuttingDown()
	err := s.http.Shutdown(ctx)
	if err != nil {
		_ = s.http.Close() // long-running watches: cut them
	}
	<-s.done
	s.cancel()
	s.closeStorage()
	return err
}

func (s *Server) closeStorage() {
	if s.backend != nil {
		s.backend.Close()
	}
	if s.client != nil {
		_ = s.client.Close()
	}
	if s.etcd != nil {
		s.etcd.Close()
	}
}
