package podroutes

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/wasmkube/wasmkube/control/controllers/framework"
)

// Protocol is the route protocol (rtm_protocol) of every route this package
// makes: `ip route show proto 119` lists them. The kernel keeps 0-4 for
// itself and iproute2's rt_protos names zebra 11, bird 12, babel 42, bgp
// 186 and others; 119 ('w') is none of those.
const Protocol netlink.RouteProtocol = 119

// ReasonNoRoute is the reason of the Warning Event on a Node whose pods this
// node cannot route to.
const ReasonNoRoute = "NoRouteToNode"

// DefaultResyncPeriod is how often the whole table is reconciled against
// all Nodes: it puts back a route someone deleted and adds the ones whose
// gateway became reachable when an interface came up.
const DefaultResyncPeriod = time.Minute

// Netlink is the part of *netlink.Handle the controller uses; a handle made
// with netlink.NewHandleAt works in that network namespace.
type Netlink interface {
	AddrList(link netlink.Link, family int) ([]netlink.Addr, error)
	LinkByIndex(index int) (netlink.Link, error)
	RouteListFiltered(family int, filter *netlink.Route, filterMask uint64) ([]netlink.Route, error)
	RouteReplace(route *netlink.Route) error
	RouteDel(route *netlink.Route) error
}

// Option configures a Controller.
type Option func(*Controller)

// WithNodeName is the node the controller runs on: its own Node gets no
// route. Required.
func WithNodeName(name string) Option { return func(c *Controller) { c.nodeName = name } }

// WithInformers makes the controller watch Nodes through factory, shared
// with the agent's other watchers, instead of a factory of its own.
func WithInformers(factory informers.SharedInformerFactory) Option {
	return func(c *Controller) { c.factory = factory }
}

// WithNetlink makes the routes through h instead of in the agent's own
// network namespace.
func WithNetlink(h Netlink) Option { return func(c *Controller) { c.nl = h } }

// WithLogger sets where the controller logs. Default slog.Default().
func WithLogger(l *slog.Logger) Option { return func(c *Controller) { c.log = l } }

// WithResyncPeriod sets how often the whole table is reconciled; default
// DefaultResyncPeriod.
func WithResyncPeriod(d time.Duration) Option { return func(c *Controller) { c.resync = d } }

// Controller keeps the routes to other nodes' pods.
type Controller struct {
	client   kubernetes.Interface
	nodeName string
	factory  informers.SharedInformerFactory
	nl       Netlink
	log      *slog.Logger
	resync   time.Duration

	ctrl     *framework.Controller
	lister   corelisters.NodeLister
	recorder record.EventRecorder

	// mu serialises the table's changes: a sync and a full pass must not
	// interleave their listings and writes.
	mu sync.Mutex
	// owned is, per Node name, the pod ranges routed for it, so that a
	// range is removed when its Node goes or changes.
	owned map[string][]netip.Prefix
	// reported is, per Node name, the problem last logged and raised as an
	// Event, so that each is reported once.
	reported map[string]string
}

// New returns a controller; Run starts it.
func New(client kubernetes.Interface, opts ...Option) *Controller {
	c := &Controller{
		client:   client,
		nl:       &netlink.Handle{},
		log:      slog.Default(),
		resync:   DefaultResyncPeriod,
		owned:    map[string][]netip.Prefix{},
		reported: map[string]string{},
	}
	for _, o := range opts {
		o(c)
	}
	c.ctrl = framework.New("podroutes", c.sync)
	return c
}

// Run keeps the routes until ctx ends. The routes stay when it returns, so
// that pod traffic outlives an agent restart; the next run reconciles them.
func (c *Controller) Run(ctx context.Context) error {
	if c.nodeName == "" {
		return errors.New("podroutes: a node name is required")
	}
	factory := c.factory
	if factory == nil {
		factory = informers.NewSharedInformerFactoryWithOptions(c.client, 0, informers.WithTransform(framework.StripManagedFields))
		defer factory.Shutdown()
	}
	inf := factory.Core().V1().Nodes()
	c.lister = inf.Lister()
	reg, err := inf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: c.ctrl.Enqueue,
		UpdateFunc: func(old, cur any) {
			o, ok1 := old.(*corev1.Node)
			n, ok2 := cur.(*corev1.Node)
			if ok1 && ok2 && !routingChanged(o, n) {
				return // heartbeats and conditions move no route
			}
			c.ctrl.Enqueue(cur)
		},
		DeleteFunc: c.ctrl.Enqueue,
	})
	if err != nil {
		return fmt.Errorf("podroutes: node handler: %w", err)
	}
	defer func() { _ = inf.Informer().RemoveEventHandler(reg) }()

	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	defer broadcaster.Shutdown()
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: c.client.CoreV1().Events("")})
	c.recorder = broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "wasmkube-agent", Host: c.nodeName})

	factory.Start(ctx.Done())
	if !cache.WaitForNamedCacheSync("podroutes", ctx.Done(), reg.HasSynced) {
		return fmt.Errorf("podroutes: node informer did not sync: %w", ctx.Err())
	}
	// The first full pass runs before any sync, so that routes an earlier
	// run left for Nodes that are gone never linger next to new ones.
	c.resyncAll()
	go func() {
		t := time.NewTicker(c.resync)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				c.resyncAll()
			}
		}
	}()
	return c.ctrl.Run(ctx, 1, reg.HasSynced)
}

// resyncAll removes our routes that no Node wants and queues every Node,
// whose syncs add what is missing. A failure is logged: the next pass, and
// each Node's own sync, try again.
func (c *Controller) resyncAll() {
	nodes, err := c.lister.List(labels.Everything())
	if err != nil {
		c.log.Warn("podroutes: list nodes", "err", err)
		return
	}
	if err := c.removeUnwanted(nodes); err != nil {
		c.log.Warn("podroutes: remove stale routes", "err", err)
	}
	for _, n := range nodes {
		c.ctrl.EnqueueKey(n.Name)
	}
}

// removeUnwanted deletes each of our routes whose destination is no other
// Node's pod range.
func (c *Controller) removeUnwanted(nodes []*corev1.Node) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	wanted := map[netip.Prefix]bool{}
	for _, n := range nodes {
		if n.Name == c.nodeName {
			continue
		}
		for _, p := range podRanges(n) {
			wanted[p] = true
		}
	}
	ours, _, err := c.mainRoutes()
	if err != nil {
		return err
	}
	var errs []error
	for _, r := range ours {
		if dst, ok := prefixOf(r.Dst); ok && wanted[dst] {
			continue
		}
		if err := c.del(r); err != nil {
			errs = append(errs, err)
			continue
		}
		c.log.Info("podroutes: removed a route no node wants", "dst", r.Dst, "via", r.Gw)
	}
	return errors.Join(errs...)
}

// sync makes the routes to the pods of the Node named key what the Node
// says: none for a Node that is gone or is this one, else one per pod
// range whose gateway is directly reachable.
func (c *Controller) sync(_ context.Context, key string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	node, err := c.lister.Get(key)
	if apierrors.IsNotFound(err) {
		node = nil
	} else if err != nil {
		return fmt.Errorf("podroutes: node %s: %w", key, err)
	}
	var p plan
	if node != nil && node.Name != c.nodeName {
		host, err := c.hostAddrs()
		if err != nil {
			return err
		}
		p = planFor(node, host)
	}
	ours, others, err := c.mainRoutes()
	if err != nil {
		return err
	}
	var errs []error
	keep := map[netip.Prefix]bool{}
	var made []netip.Prefix
	for _, want := range p.routes {
		dst, _ := prefixOf(want.Dst)
		keep[dst] = true
		foreign := foreignInto(dst, others)
		if foreign.same != "" {
			p.problems = append(p.problems, fmt.Sprintf("pod range %s already has a route not made by wasmkube (%s), which is left as it is", dst, foreign.same))
			continue
		}
		if len(foreign.inside) > 0 {
			p.problems = append(p.problems, fmt.Sprintf("parts of pod range %s have routes not made by wasmkube (%s), which take those parts' traffic elsewhere", dst, strings.Join(foreign.inside, ", ")))
		}
		made = append(made, dst)
		if slices.ContainsFunc(ours, func(r netlink.Route) bool { return sameRoute(r, want) }) {
			continue
		}
		if err := c.nl.RouteReplace(&want); err != nil {
			errs = append(errs, fmt.Errorf("podroutes: route %s via %s: %w", want.Dst, want.Gw, err))
			continue
		}
		c.log.Info("podroutes: route to a node's pods", "node", key, "dst", want.Dst, "via", want.Gw)
	}
	for _, dst := range c.owned[key] {
		if keep[dst] {
			continue
		}
		for _, r := range ours {
			if got, ok := prefixOf(r.Dst); ok && got == dst {
				if err := c.del(r); err != nil {
					errs = append(errs, err)
					made = append(made, dst) // still ours to remove
					continue
				}
				c.log.Info("podroutes: removed a route to a node's pods", "node", key, "dst", r.Dst, "via", r.Gw)
			}
		}
	}
	if len(made) == 0 {
		delete(c.owned, key)
	} else {
		c.owned[key] = made
	}
	c.report(key, node, p.problems)
	return errors.Join(errs...)
}

// report logs a Node's routing problems and raises them as a Warning Event
// on it, once for each new set of problems.
func (c *Controller) report(key string, node *corev1.Node, problems []string) {
	msg := strings.Join(problems, "; ")
	if msg == c.reported[key] {
		return
	}
	if msg == "" {
		delete(c.reported, key)
		return
	}
	c.reported[key] = msg
	c.log.Warn("podroutes: no route to a node's pods", "node", key, "reason", msg)
	if node != nil {
		c.recorder.Event(node, corev1.EventTypeWarning, ReasonNoRoute, msg)
	}
}

// routingChanged says whether an update moves a route: only the pod
// ranges and the InternalIPs do.
func routingChanged(old, cur *corev1.Node) bool {
	return !slices.Equal(podRanges(old), podRanges(cur)) || !slices.Equal(internalIPs(old), internalIPs(cur))
}
