package garbagecollector

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"github.com/wasmkube/wasmkube/control/controllers/framework"
	"github.com/wasmkube/wasmkube/control/controllers/tombstone"
)

// Name is the controller's name.
const Name = "garbage-collector-controller"

// ignored resources are never owners or dependents worth watching: events
// churn the most and are cleaned up by their TTL, as upstream ignores them.
var ignored = map[schema.GroupResource]bool{
	{Group: "", Resource: "events"}:              true,
	{Group: "events.k8s.io", Resource: "events"}: true,
}

// mapping is how an ownerReference's kind is reached.
type mapping struct {
	gvr        schema.GroupVersionResource
	namespaced bool
}

type collector struct {
	dynamic dynamic.Interface
	kinds   map[schema.GroupKind]mapping
	graph   *graph
	ctrl    *framework.Controller
	log     *slog.Logger
}

// Starter runs the garbage collector. It needs the rest.Config itself, for
// the metadata and dynamic clients that reach every kind.
func Starter(cfg *rest.Config) framework.Starter {
	return func(cc *framework.Context) (func(context.Context) error, error) {
		mc, err := metadata.NewForConfig(cfg)
		if err != nil {
			return nil, fmt.Errorf("metadata client: %w", err)
		}
		dc, err := dynamic.NewForConfig(cfg)
		if err != nil {
			return nil, fmt.Errorf("dynamic client: %w", err)
		}
		watched, kinds, err := Resources(cc.Client.Discovery(), "list", "watch", "delete", "patch")
		if err != nil {
			return nil, err
		}
		c := &collector{dynamic: dc, kinds: kinds, graph: newGraph(), log: slog.With("controller", Name)}
		c.ctrl = framework.New(Name, c.process)
		factory := metadatainformer.NewSharedInformerFactory(mc, 0)
		var synced []cache.InformerSynced
		for _, gvr := range watched {
			if ignored[gvr.GroupResource()] {
				continue
			}
			inf := factory.ForResource(gvr).Informer()
			if err := inf.SetTransform(framework.StripManagedFields); err != nil {
				return nil, fmt.Errorf("%s transform: %w", gvr, err)
			}
			if _, err := inf.AddEventHandler(c.handler(gvr)); err != nil {
				return nil, fmt.Errorf("%s handler: %w", gvr, err)
			}
			synced = append(synced, inf.HasSynced)
		}
		return func(ctx context.Context) error {
			factory.Start(ctx.Done())
			defer factory.Shutdown()
			return c.ctrl.Run(ctx, 4, synced...)
		}, nil
	}
}

// Resources lists, from discovery, the preferred version of every
// top-level resource supporting all the verbs, and maps every kind (in any
// served version) to a resource. Groups that fail discovery are left out
// rather than stopping the controller.
func Resources(d discovery.DiscoveryInterface, verbs ...string) ([]schema.GroupVersionResource, map[schema.GroupKind]mapping, error) {
	preferred, err := d.ServerPreferredResources()
	if err != nil && !discovery.IsGroupDiscoveryFailedError(err) {
		return nil, nil, fmt.Errorf("discovery: %w", err)
	}
	kinds := map[schema.GroupKind]mapping{}
	var out []schema.GroupVersionResource
	for _, list := range preferred {
		gv, err := schema.ParseGroupVersion(list.GroupVersion)
		if err != nil {
			continue
		}
		for _, r := range list.APIResources {
			if slices.Contains([]rune(r.Name), '/') {
				continue
			}
			gvr := gv.WithResource(r.Name)
			kinds[schema.GroupKind{Group: gv.Group, Kind: r.Kind}] = mapping{gvr: gvr, namespaced: r.Namespaced}
			ok := true
			for _, v := range verbs {
				ok = ok && slices.Contains(r.Verbs, v)
			}
			if ok {
				out = append(out, gvr)
			}
		}
	}
	return out, kinds, nil
}

func (c *collector) handler(gvr schema.GroupVersionResource) cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { c.observe(gvr, obj) },
		UpdateFunc: func(_, obj any) { c.observe(gvr, obj) },
		DeleteFunc: func(obj any) { c.forget(obj) },
	}
}

func (c *collector) observe(gvr schema.GroupVersionResource, obj any) {
	m, ok := tombstone.Unwrap[metav1.Object](obj)
	if !ok {
		return
	}
	n := nodeOf(gvr, m)
	old := c.graph.set(n)
	if len(n.owners) > 0 || (n.deleting && (n.hasFinalizer(metav1.FinalizerOrphanDependents) || n.hasFinalizer(metav1.FinalizerDeleteDependents))) {
		c.enqueue(n.uid)
	}
	if old == nil {
		return
	}
	// An owner waiting for its dependents to go is also waiting for them
	// to drop their references to it.
	for _, o := range old.owners {
		if !slices.ContainsFunc(n.owners, func(r metav1.OwnerReference) bool { return r.UID == o.UID }) {
			c.enqueueIfDeletingDependents(o.UID)
		}
	}
}

func (c *collector) forget(obj any) {
	m, ok := tombstone.Unwrap[metav1.Object](obj)
	if !ok {
		return
	}
	n := c.graph.remove(m.GetUID())
	if n == nil {
		return
	}
	// Its dependents may now be orphans to collect.
	for _, d := range c.graph.dependentsOf(n.uid) {
		c.enqueue(d.uid)
	}
	for _, o := range n.owners {
		c.enqueueIfDeletingDependents(o.UID)
	}
}

func (c *collector) enqueueIfDeletingDependents(uid types.UID) {
	if o := c.graph.get(uid); o != nil && o.deleting && o.hasFinalizer(metav1.FinalizerDeleteDependents) {
		c.enqueue(uid)
	}
}

func (c *collector) enqueue(uid types.UID) { c.ctrl.EnqueueKey(string(uid)) }

// process handles one object: the policies it carries out as an owner
// being deleted, then its own fate as a dependent.
func (c *collector) process(ctx context.Context, key string) error {
	n := c.graph.get(types.UID(key))
	if n == nil {
		return nil
	}
	if n.deleting {
		switch {
		case n.hasFinalizer(metav1.FinalizerOrphanDependents):
			return c.orphanDependents(ctx, n)
		case n.hasFinalizer(metav1.FinalizerDeleteDependents):
			return c.deleteDependents(ctx, n)
		}
		// Already on its way out: nothing for the collector to add.
		return nil
	}
	if len(n.owners) == 0 {
		return nil
	}
	return c.checkOwners(ctx, n)
}

// retryAfter is how soon an owner waiting for its dependents is looked at
// again even without an event, in case one was missed.
const retryAfter = 2 * time.Second
