package dns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/wasmkube/wasmkube/control/controllers/framework"
	"github.com/wasmkube/wasmkube/control/controllers/tombstone"
)

// Defaults, as a kubeadm cluster's CoreDNS has them.
const (
	DefaultClusterDomain = "cluster.local"
	DefaultResolvConf    = "/etc/resolv.conf"
	DefaultTTL           = 5
)

// Server answers the cluster's names and forwards the others. Build one
// with New and run it with Serve.
type Server struct {
	client     kubernetes.Interface
	zone       string // lower case, fully qualified
	resolvConf string
	ttl        uint32
	log        *slog.Logger
	serial     uint32
	factory    informers.SharedInformerFactory // shared, or nil for Serve's own

	ix      *index
	fwd     *forwarder
	baseCtx context.Context // Serve's, so that shutdown ends forwarding
	started atomic.Bool
	ready   chan struct{}
	addr    netip.AddrPort
}

// Option configures a Server.
type Option func(*Server)

// WithClusterDomain sets the cluster domain (default cluster.local).
func WithClusterDomain(domain string) Option {
	return func(s *Server) { s.zone = dns.CanonicalName(domain) }
}

// WithUpstreams names the resolv.conf whose nameservers receive the names
// outside the cluster domain, tried in the file's order (default
// /etc/resolv.conf).
func WithUpstreams(resolvConfPath string) Option {
	return func(s *Server) { s.resolvConf = resolvConfPath }
}

// WithTTL sets the TTL of the cluster's records and of the SOA's negative
// caching (default 5 seconds).
func WithTTL(ttl uint32) Option {
	return func(s *Server) { s.ttl = ttl }
}

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return func(s *Server) { s.log = l }
}

// WithInformers makes the server watch Services and EndpointSlices through
// factory, which others on the node (the service proxy) share, instead of a
// factory of its own. Its owner shuts it down; it should strip managed
// fields, as the server's own does.
func WithInformers(factory informers.SharedInformerFactory) Option {
	return func(s *Server) { s.factory = factory }
}

// New returns a Server that reads Services and EndpointSlices through
// client.
func New(client kubernetes.Interface, opts ...Option) *Server {
	s := &Server{
		client:     client,
		zone:       dns.CanonicalName(DefaultClusterDomain),
		resolvConf: DefaultResolvConf,
		ttl:        DefaultTTL,
		log:        slog.Default(),
		serial:     uint32(time.Now().Unix()),
		ix:         newIndex(),
		ready:      make(chan struct{}),
	}
	for _, o := range opts {
		o(s)
	}
	s.log = s.log.With("component", "dns")
	return s
}

// Ready is closed once the informers' caches are synced and the sockets
// are bound and served; Addr is valid from then on.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Addr is the address Serve bound for both UDP and TCP (with the port
// chosen when the requested one was 0). It is valid once Ready is closed.
func (s *Server) Addr() netip.AddrPort { return s.addr }

// Serve listens on addr (UDP and TCP, the same port), syncs the informers,
// and answers queries until ctx is done. It returns nil after a shutdown
// caused by ctx, and an error if it could not start or a listener failed.
// A Server serves once.
func (s *Server) Serve(ctx context.Context, addr string) error {
	if !s.started.CompareAndSwap(false, true) {
		return errors.New("dns: Serve called twice")
	}
	pc, ln, err := listen(addr)
	if err != nil {
		return err
	}
	defer pc.Close()
	defer ln.Close()
	s.addr = pc.LocalAddr().(*net.UDPAddr).AddrPort()

	upstreams, err := readUpstreams(s.resolvConf, s.addr)
	if err != nil {
		// Cluster names still resolve; other names get SERVFAIL.
		s.log.Warn("no upstream nameservers: names outside the cluster will fail", "resolvConf", s.resolvConf, "err", err)
	}
	s.fwd = newForwarder(upstreams)
	s.baseCtx = ctx

	// A shared factory runs as long as its owner's ctx; an own one stops
	// with Serve.
	factory, informerCtx := s.factory, ctx
	if factory == nil {
		var stopInformers context.CancelFunc
		informerCtx, stopInformers = context.WithCancel(ctx)
		// The index keeps its own compact copy; the caches need no
		// managed fields.
		factory = informers.NewSharedInformerFactoryWithOptions(s.client, 0, informers.WithTransform(framework.StripManagedFields))
		defer factory.Shutdown()
		defer stopInformers() // before Shutdown, which waits for the informers
	}
	synced, err := s.watch(factory)
	if err != nil {
		return err
	}
	factory.Start(informerCtx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		if ctx.Err() != nil {
			return nil
		}
		return errors.New("dns: informer caches did not sync")
	}

	servers := []*dns.Server{
		{PacketConn: pc, Handler: s},
		{Listener: ln, Handler: s},
	}
	errs := make(chan error, len(servers))
	started := make(chan struct{}, len(servers))
	for _, srv := range servers {
		srv.NotifyStartedFunc = func() { started <- struct{}{} }
		go func() { errs <- srv.ActivateAndServe() }()
	}
	var serveErr error
	for range servers {
		select {
		case <-started:
		case serveErr = <-errs:
		}
		if serveErr != nil {
			break
		}
	}
	if serveErr == nil {
		close(s.ready)
		s.log.Info("serving cluster DNS", "addr", s.addr.String(), "domain", s.zone, "upstreams", upstreams)
		select {
		case <-ctx.Done():
		case serveErr = <-errs:
		}
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, srv := range servers {
		_ = srv.ShutdownContext(shutdownCtx) // fails only for a server that never started
	}
	if serveErr != nil {
		return fmt.Errorf("dns: serving %s: %w", s.addr, serveErr)
	}
	return nil
}

// watch registers the index's handlers on the factory's Service and
// EndpointSlice informers and returns their HasSynced.
func (s *Server) watch(factory informers.SharedInformerFactory) ([]cache.InformerSynced, error) {
	svcs := factory.Core().V1().Services().Informer()
	slices := factory.Discovery().V1().EndpointSlices().Informer()
	svcReg, err := svcs.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { s.onService(obj, false) },
		UpdateFunc: func(_, obj any) { s.onService(obj, false) },
		DeleteFunc: func(obj any) { s.onService(obj, true) },
	})
	if err != nil {
		return nil, fmt.Errorf("dns: service handler: %w", err)
	}
	sliceReg, err := slices.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { s.onSlice(obj, false) },
		UpdateFunc: func(_, obj any) { s.onSlice(obj, false) },
		DeleteFunc: func(obj any) { s.onSlice(obj, true) },
	})
	if err != nil {
		return nil, fmt.Errorf("dns: endpointslice handler: %w", err)
	}
	// The index is built by these handlers: synced once they have seen
	// every object, which on a shared, already running informer comes
	// after the informer's own sync.
	return []cache.InformerSynced{svcReg.HasSynced, sliceReg.HasSynced}, nil
}

func (s *Server) onService(obj any, deleted bool) {
	svc, ok := tombstone.Unwrap[*corev1.Service](obj)
	if !ok {
		return
	}
	if deleted {
		s.ix.deleteService(svc.Namespace, svc.Name)
		return
	}
	s.ix.setService(svc)
}

func (s *Server) onSlice(obj any, deleted bool) {
	es, ok := tombstone.Unwrap[*discoveryv1.EndpointSlice](obj)
	if !ok {
		return
	}
	if deleted {
		s.ix.deleteSlice(es)
		return
	}
	s.ix.setSlice(es)
}

// listen binds UDP and TCP on the same address; with port 0 the TCP port
// follows the one UDP got, retried if TCP finds it taken.
func listen(addr string) (net.PacketConn, net.Listener, error) {
	_, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, fmt.Errorf("dns: address %q: %w", addr, err)
	}
	for attempt := 0; ; attempt++ {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return nil, nil, fmt.Errorf("dns: listening on udp %s: %w", addr, err)
		}
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, ln, nil
		}
		pc.Close()
		if portStr != "0" || attempt == 10 || !errors.Is(err, syscall.EADDRINUSE) {
			return nil, nil, fmt.Errorf("dns: listening on tcp %s: %w", addr, err)
		}
	}
}

// readUpstreams returns the nameservers of a resolv.conf as host:port, in
// order, leaving out the server's own address so that it never forwards
// to itself.
func readUpstreams(path string, self netip.AddrPort) ([]string, error) {
	cfg, err := dns.ClientConfigFromFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	var out []string
	for _, ns := range cfg.Servers {
		hp := net.JoinHostPort(ns, cfg.Port)
		if ap, err := netip.ParseAddrPort(hp); err == nil && ap.Addr().Unmap() == self.Addr().Unmap() && ap.Port() == self.Port() {
			continue
		}
		out = append(out, hp)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s names no nameserver besides this server", path)
	}
	return out, nil
}

// inZone returns the labels of qname (lower case, fully qualified) below
// the cluster domain, leftmost first, and whether qname is in it.
func (s *Server) inZone(qname string) ([]string, bool) {
	if qname == s.zone {
		return nil, true
	}
	if !strings.HasSuffix(qname, "."+s.zone) {
		return nil, false
	}
	return strings.Split(qname[:len(qname)-len(s.zone)-1], "."), true
}
