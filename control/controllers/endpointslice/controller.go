package endpointslice

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/wasmkube/wasmkube/control/controllers/framework"
	"github.com/wasmkube/wasmkube/control/controllers/tombstone"
)

// ControllerName is the managed-by label value and event source, upstream's.
const ControllerName = "endpointslice-controller.k8s.io"

// errStaleCache defers a sync until the informer has seen our own writes;
// the informer event that delivers them enqueues the Service again.
var errStaleCache = errors.New("endpointslice informer cache is older than this controller's writes")

type controller struct {
	client   kubernetes.Interface
	services corelisters.ServiceLister
	pods     corelisters.PodLister
	nodes    corelisters.NodeLister
	slices   discoverylisters.EndpointSliceLister
	ctrl     *framework.Controller
	tracker  *tracker
	recorder record.EventRecorder
}

// Starter runs the EndpointSlice controller with five workers.
func Starter() framework.Starter {
	return func(cc *framework.Context) (func(context.Context) error, error) {
		svcInf := cc.Informers.Core().V1().Services()
		podInf := cc.Informers.Core().V1().Pods()
		nodeInf := cc.Informers.Core().V1().Nodes()
		sliceInf := cc.Informers.Discovery().V1().EndpointSlices()
		c := &controller{
			client: cc.Client, services: svcInf.Lister(), pods: podInf.Lister(),
			nodes: nodeInf.Lister(), slices: sliceInf.Lister(), tracker: newTracker(),
			recorder: cc.Recorder("endpoint-slice-controller"),
		}
		c.ctrl = framework.New("endpointslice-controller", c.sync)
		if _, err := svcInf.Informer().AddEventHandler(c.ctrl.Handler()); err != nil {
			return nil, fmt.Errorf("service handler: %w", err)
		}
		if _, err := podInf.Informer().AddEventHandler(PodHandler(c.services, c.ctrl.EnqueueKey)); err != nil {
			return nil, fmt.Errorf("pod handler: %w", err)
		}
		if _, err := nodeInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
			UpdateFunc: c.nodeUpdate,
		}); err != nil {
			return nil, fmt.Errorf("node handler: %w", err)
		}
		if _, err := sliceInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { c.sliceEvent(obj, false) },
			UpdateFunc: func(_, obj any) { c.sliceEvent(obj, false) },
			DeleteFunc: func(obj any) { c.sliceEvent(obj, true) },
		}); err != nil {
			return nil, fmt.Errorf("endpointslice handler: %w", err)
		}
		return func(ctx context.Context) error {
			return c.ctrl.Run(ctx, 5, svcInf.Informer().HasSynced, podInf.Informer().HasSynced,
				nodeInf.Informer().HasSynced, sliceInf.Informer().HasSynced)
		}, nil
	}
}

// nodeUpdate resyncs every Service when a node's zone changes, since
// endpoints carry their node's zone. Zones change rarely.
func (c *controller) nodeUpdate(oldObj, newObj any) {
	old, cur := oldObj.(*corev1.Node), newObj.(*corev1.Node)
	if old.Labels[corev1.LabelTopologyZone] == cur.Labels[corev1.LabelTopologyZone] {
		return
	}
	svcs, err := c.services.List(labels.Everything())
	if err != nil {
		return
	}
	for _, svc := range svcs {
		c.ctrl.Enqueue(svc)
	}
}

func (c *controller) sliceEvent(obj any, deleted bool) {
	s, ok := tombstone.Unwrap[*discoveryv1.EndpointSlice](obj)
	if !ok || s.Labels[discoveryv1.LabelManagedBy] != ControllerName {
		return
	}
	name := s.Labels[discoveryv1.LabelServiceName]
	if name == "" {
		return
	}
	key := s.Namespace + "/" + name
	if deleted {
		c.tracker.observedDelete(key, s.Name)
	}
	c.ctrl.EnqueueKey(key)
}

func (c *controller) zoneOf(nodeName string) string {
	if nodeName == "" {
		return ""
	}
	n, err := c.nodes.Get(nodeName)
	if err != nil {
		return ""
	}
	return n.Labels[corev1.LabelTopologyZone]
}

func (c *controller) sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return fmt.Errorf("service key %q: %w", key, err)
	}
	managed, err := c.slices.EndpointSlices(ns).List(labels.SelectorFromSet(labels.Set{
		discoveryv1.LabelServiceName: name,
		discoveryv1.LabelManagedBy:   ControllerName,
	}))
	if err != nil {
		return fmt.Errorf("listing slices of %s: %w", key, err)
	}
	if c.tracker.stale(key, managed) {
		return errStaleCache
	}
	svc, err := c.services.Services(ns).Get(name)
	if apierrors.IsNotFound(err) {
		// The garbage collector follows the owner references too; deleting
		// here keeps consumers from routing to a Service that is gone.
		err := c.deleteSlices(ctx, key, managed)
		if err == nil {
			c.tracker.forget(key)
		}
		return err
	}
	if err != nil {
		return fmt.Errorf("service %s: %w", key, err)
	}
	if svc.Spec.Selector == nil || svc.Spec.Type == corev1.ServiceTypeExternalName {
		// Such Services get their endpoints from elsewhere (hand-written
		// slices or DNS); slices we made while it had a selector go.
		return c.deleteSlices(ctx, key, managed)
	}
	if svc.DeletionTimestamp != nil {
		return nil
	}
	pods, err := c.pods.Pods(ns).List(labels.SelectorFromValidatedSet(svc.Spec.Selector))
	if err != nil {
		return fmt.Errorf("listing pods of %s: %w", key, err)
	}

	byType := map[discoveryv1.AddressType][]*discoveryv1.EndpointSlice{}
	var foreign []*discoveryv1.EndpointSlice
	types := ServiceAddressTypes(svc)
	for _, s := range managed {
		if !ownedBy(s, svc) || !containsType(types, s.AddressType) {
			// Left from an earlier Service of the same name, or an
			// address family the Service no longer has.
			foreign = append(foreign, s)
			continue
		}
		byType[s.AddressType] = append(byType[s.AddressType], s)
	}
	var errs []error
	for _, at := range types {
		p := reconcile(svc, at, desiredGroups(svc, pods, c.zoneOf, at), byType[at])
		p.del = append(p.del, foreignOf(foreign, at)...)
		errs = append(errs, c.apply(ctx, key, svc, p))
	}
	errs = append(errs, c.deleteSlices(ctx, key, foreignNotIn(foreign, types)))
	return errors.Join(errs...)
}

func ownedBy(s *discoveryv1.EndpointSlice, svc *corev1.Service) bool {
	for _, o := range s.OwnerReferences {
		if o.UID == svc.UID && o.Kind == "Service" && o.APIVersion == "v1" {
			return true
		}
	}
	return false
}

func containsType(types []discoveryv1.AddressType, at discoveryv1.AddressType) bool {
	for _, t := range types {
		if t == at {
			return true
		}
	}
	return false
}

func foreignOf(foreign []*discoveryv1.EndpointSlice, at discoveryv1.AddressType) []*discoveryv1.EndpointSlice {
	var out []*discoveryv1.EndpointSlice
	for _, s := range foreign {
		if s.AddressType == at {
			out = append(out, s)
		}
	}
	return out
}

func foreignNotIn(foreign []*discoveryv1.EndpointSlice, types []discoveryv1.AddressType) []*discoveryv1.EndpointSlice {
	var out []*discoveryv1.EndpointSlice
	for _, s := range foreign {
		if !containsType(types, s.AddressType) {
			out = append(out, s)
		}
	}
	return out
}

// apply writes a plan: creates first, then updates, then deletes, so that
// an endpoint moving between slices is never missing from all of them.
func (c *controller) apply(ctx context.Context, key string, svc *corev1.Service, p plan) error {
	api := c.client.DiscoveryV1().EndpointSlices(svc.Namespace)
	for _, s := range p.create {
		got, err := api.Create(ctx, s, metav1.CreateOptions{})
		if err != nil {
			if apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
				return nil
			}
			c.recorder.Eventf(svc, corev1.EventTypeWarning, "FailedToUpdateEndpointSlices",
				"Error updating Endpoint Slices for Service %s: %v", key, err)
			return fmt.Errorf("creating endpointslice for %s: %w", key, err)
		}
		c.tracker.wrote(key, got)
	}
	for _, s := range p.update {
		got, err := api.Update(ctx, s, metav1.UpdateOptions{})
		if err != nil {
			return fmt.Errorf("updating endpointslice %s/%s: %w", s.Namespace, s.Name, err)
		}
		c.tracker.wrote(key, got)
	}
	return c.deleteSlices(ctx, key, p.del)
}

func (c *controller) deleteSlices(ctx context.Context, key string, slices []*discoveryv1.EndpointSlice) error {
	for _, s := range slices {
		err := c.client.DiscoveryV1().EndpointSlices(s.Namespace).Delete(ctx, s.Name, metav1.DeleteOptions{
			Preconditions: &metav1.Preconditions{UID: &s.UID},
		})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("deleting endpointslice %s/%s: %w", s.Namespace, s.Name, err)
		}
		c.tracker.deletedSlice(key, s)
	}
	return nil
}
