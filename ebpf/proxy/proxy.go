package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/wasmkube/wasmkube/control/controllers/framework"
	"github.com/wasmkube/wasmkube/control/controllers/tombstone"
	"github.com/wasmkube/wasmkube/ebpf/lb"
)

// Datapath is what the proxy needs from the eBPF load balancer (*lb.LB).
type Datapath interface {
	// Reconcile makes the maps hold exactly want and says how many
	// frontends it wrote or removed.
	Reconcile(want map[lb.Frontend]lb.Service) (changed int, err error)
	Upsert(lb.Frontend, lb.Service) error
	Delete(lb.Frontend) error
}

// Option configures a Proxy.
type Option func(*Proxy)

// WithNodeName is the node the proxy runs on, for the Local traffic
// policies.
func WithNodeName(name string) Option { return func(p *Proxy) { p.node.name = name } }

// WithNodeIPs are the addresses NodePorts answer on (IPv6 ones are ignored).
func WithNodeIPs(ips ...netip.Addr) Option {
	return func(p *Proxy) {
		for _, ip := range ips {
			if ip.Is4() || ip.Is4In6() {
				p.node.ips = append(p.node.ips, ip.Unmap())
			}
		}
	}
}

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(p *Proxy) { p.log = l } }

// WithInformers makes the proxy watch through factory, which others on the
// node (the DNS server) share, instead of a factory of its own: one watch
// and one cache of Services and EndpointSlices per node. Its owner shuts it
// down; it should strip managed fields, as the proxy's own does.
func WithInformers(factory informers.SharedInformerFactory) Option {
	return func(p *Proxy) { p.factory = factory }
}

// WithSyncHook is called after a sync wrote some of a Service's frontends,
// with its key and the time the writes finished; after the first full
// Reconcile it is called with the key "".
func WithSyncHook(f func(key string, at time.Time)) Option {
	return func(p *Proxy) { p.hook = f }
}

// Proxy keeps a Datapath in step with the cluster's Services.
type Proxy struct {
	client kubernetes.Interface
	dp     Datapath
	node   node
	log    *slog.Logger
	hook   func(string, time.Time)
	// factory is shared when given (WithInformers), else Run's own.
	factory informers.SharedInformerFactory

	services corelisters.ServiceLister
	// slices indexes EndpointSlices by their Service's key: a label
	// selector over the lister would scan every slice of the namespace
	// for each Service.
	slices cache.Indexer

	mu sync.Mutex
	// programmed is what each Service key last wrote; owner says which key
	// a frontend belongs to, so that two Services claiming one address
	// (say the same external IP and port) do not delete each other's.
	programmed map[string]map[lb.Frontend]lb.Service
	owner      map[lb.Frontend]string
}

// New returns a proxy over client writing to dp; Run starts it.
func New(client kubernetes.Interface, dp Datapath, opts ...Option) *Proxy {
	p := &Proxy{
		client: client, dp: dp, log: slog.Default(),
		programmed: map[string]map[lb.Frontend]lb.Service{},
		owner:      map[lb.Frontend]string{},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

// Run watches the API until ctx ends. It returns an error only when the
// caches never sync or the first Reconcile cannot be done before ctx ends.
func (p *Proxy) Run(ctx context.Context) error {
	factory := p.factory
	if factory == nil {
		factory = informers.NewSharedInformerFactoryWithOptions(p.client, 0, informers.WithTransform(framework.StripManagedFields))
		defer factory.Shutdown()
	}
	svcInf := factory.Core().V1().Services()
	sliceInf := factory.Discovery().V1().EndpointSlices()
	if err := sliceInf.Informer().AddIndexers(cache.Indexers{byService: sliceService}); err != nil {
		return fmt.Errorf("proxy: endpointslice index: %w", err)
	}
	p.services, p.slices = svcInf.Lister(), sliceInf.Informer().GetIndexer()

	// One worker: the datapath is written by one writer at a time, as
	// kube-proxy does, and the ownership bookkeeping stays simple.
	ctrl := framework.New("service-proxy", p.sync)
	if _, err := svcInf.Informer().AddEventHandler(ctrl.Handler()); err != nil {
		return fmt.Errorf("proxy: service handler: %w", err)
	}
	sliceEvent := func(obj any) {
		if s, ok := tombstone.Unwrap[*discoveryv1.EndpointSlice](obj); ok && s.Labels[discoveryv1.LabelServiceName] != "" {
			ctrl.EnqueueKey(s.Namespace + "/" + s.Labels[discoveryv1.LabelServiceName])
		}
	}
	if _, err := sliceInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    sliceEvent,
		UpdateFunc: func(_, obj any) { sliceEvent(obj) },
		DeleteFunc: sliceEvent,
	}); err != nil {
		return fmt.Errorf("proxy: endpointslice handler: %w", err)
	}
	factory.Start(ctx.Done())
	if !cache.WaitForNamedCacheSync("service-proxy", ctx.Done(), svcInf.Informer().HasSynced, sliceInf.Informer().HasSynced) {
		return fmt.Errorf("proxy: caches did not sync: %w", ctx.Err())
	}
	// Events queued so far find their Service already programmed and
	// write nothing.
	if err := wait.ExponentialBackoffWithContext(ctx, wait.Backoff{Duration: 100 * time.Millisecond, Factor: 2, Cap: 30 * time.Second, Steps: 1 << 30},
		func(ctx context.Context) (bool, error) {
			if err := p.reconcileAll(); err != nil {
				p.log.Error("proxy: full reconcile failed, retrying", "err", err)
				return false, nil
			}
			return true, nil
		}); err != nil {
		return fmt.Errorf("proxy: first reconcile: %w", err)
	}
	return ctrl.Run(ctx, 1)
}

// reconcileAll writes every Service's frontends at once.
func (p *Proxy) reconcileAll() (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	svcs, err := p.services.List(labels.Everything())
	if err != nil {
		return fmt.Errorf("listing services: %w", err)
	}
	programmed := map[string]map[lb.Frontend]lb.Service{}
	owner := map[lb.Frontend]string{}
	want := map[lb.Frontend]lb.Service{}
	for _, svc := range svcs {
		key := svc.Namespace + "/" + svc.Name
		fes, err := p.frontendsOf(svc)
		if err != nil {
			return err
		}
		mine := map[lb.Frontend]lb.Service{}
		for fe, s := range fes {
			if other, taken := owner[fe]; taken {
				// Deterministic winner: the smaller key.
				if other < key {
					continue
				}
				delete(programmed[other], fe)
			}
			owner[fe], mine[fe], want[fe] = key, s, s
		}
		programmed[key] = mine
	}
	changed, err := p.dp.Reconcile(want)
	if err != nil {
		return fmt.Errorf("reconcile of %d frontends: %w", len(want), err)
	}
	p.mu.Lock()
	p.programmed, p.owner = programmed, owner
	p.mu.Unlock()
	p.log.Info("proxy: datapath reconciled", "services", len(svcs), "frontends", len(want), "changed", changed)
	if p.hook != nil {
		p.hook("", time.Now())
	}
	return nil
}

func (p *Proxy) frontendsOf(svc *corev1.Service) (map[lb.Frontend]lb.Service, error) {
	objs, err := p.slices.ByIndex(byService, svc.Namespace+"/"+svc.Name)
	if err != nil {
		return nil, fmt.Errorf("listing endpointslices of %s/%s: %w", svc.Namespace, svc.Name, err)
	}
	eps := make([]*discoveryv1.EndpointSlice, 0, len(objs))
	for _, o := range objs {
		if es, ok := o.(*discoveryv1.EndpointSlice); ok {
			eps = append(eps, es)
		}
	}
	return translate(svc, eps, p.node), nil
}

const byService = "service"

func sliceService(obj any) ([]string, error) {
	es, ok := obj.(*discoveryv1.EndpointSlice)
	if !ok || es.Labels[discoveryv1.LabelServiceName] == "" {
		return nil, nil
	}
	return []string{es.Namespace + "/" + es.Labels[discoveryv1.LabelServiceName]}, nil
}

// sync brings one Service's frontends to what the caches say, writing only
// the frontends whose backends or settings changed.
func (p *Proxy) sync(_ context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil // a malformed key never becomes valid
	}
	var want map[lb.Frontend]lb.Service
	svc, err := p.services.Services(ns).Get(name)
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return fmt.Errorf("service %s: %w", key, err)
	default:
		if want, err = p.frontendsOf(svc); err != nil {
			return err
		}
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	have := p.programmed[key]
	if have == nil {
		have = map[lb.Frontend]lb.Service{}
		p.programmed[key] = have
	}
	var errs []error
	writes := 0
	for fe := range have {
		if _, keep := want[fe]; keep {
			continue
		}
		if err := p.dp.Delete(fe); err != nil {
			errs = append(errs, fmt.Errorf("deleting %v: %w", fe, err))
			continue
		}
		delete(have, fe)
		delete(p.owner, fe)
		writes++
	}
	for fe, s := range want {
		if o, taken := p.owner[fe]; taken && o != key {
			p.log.Warn("proxy: frontend already served by another service", "service", key, "owner", o, "frontend", fe)
			continue
		}
		if old, ok := have[fe]; ok && servicesEqual(old, s) {
			continue
		}
		if err := p.dp.Upsert(fe, s); err != nil {
			errs = append(errs, fmt.Errorf("writing %v: %w", fe, err))
			continue
		}
		have[fe] = s
		p.owner[fe] = key
		writes++
	}
	if len(have) == 0 {
		delete(p.programmed, key)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("service %s: %w", key, err)
	}
	if writes == 0 {
		return nil
	}
	p.log.Debug("proxy: service synced", "service", key, "writes", writes, "frontends", len(have))
	if p.hook != nil {
		p.hook(key, time.Now())
	}
	return nil
}
