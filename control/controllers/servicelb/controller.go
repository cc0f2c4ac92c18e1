package servicelb

import (
	"context"
	"fmt"
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/ptr"

	"github.com/wasmkube/wasmkube/control/controllers/framework"
)

// Options configure the controller.
type Options struct {
	// Pool is --loadbalancer-ip-range, as ParsePool reads it; empty
	// disables the controller.
	Pool string
}

type controller struct {
	client   kubernetes.Interface
	services corelisters.ServiceLister
	ctrl     *framework.Controller
	recorder record.EventRecorder
	alloc    *allocator
	// pending are LoadBalancer Services the pool had no address for; a
	// release gives them another try.
	pending map[string]bool
}

// Starter runs the LoadBalancer address allocator with one worker, which
// keeps the allocation bookkeeping free of locks.
func Starter(opts Options) framework.Starter {
	return func(cc *framework.Context) (func(context.Context) error, error) {
		pool, err := ParsePool(opts.Pool)
		if err != nil {
			return nil, fmt.Errorf("--loadbalancer-ip-range: %w", err)
		}
		if pool == nil {
			// As upstream with no cloud provider: Services stay pending.
			return func(ctx context.Context) error { <-ctx.Done(); return nil }, nil
		}
		svcInf := cc.Informers.Core().V1().Services()
		c := &controller{
			client: cc.Client, services: svcInf.Lister(), alloc: newAllocator(pool),
			recorder: cc.Recorder("service-lb-controller"), pending: map[string]bool{},
		}
		c.ctrl = framework.New("service-lb-controller", c.sync)
		if _, err := svcInf.Informer().AddEventHandler(c.ctrl.Handler()); err != nil {
			return nil, fmt.Errorf("service handler: %w", err)
		}
		return func(ctx context.Context) error {
			if !cache.WaitForNamedCacheSync("service-lb-controller", ctx.Done(), svcInf.Informer().HasSynced) {
				return fmt.Errorf("service-lb-controller: informers did not sync: %w", ctx.Err())
			}
			if err := c.rebuild(); err != nil {
				return err
			}
			return c.ctrl.Run(ctx, 1)
		}, nil
	}
}

// rebuild takes the allocations back from the addresses Services already
// carry in their status, the only record of them. When two Services show
// the same address the older keeps it; the other is given a new one.
func (c *controller) rebuild() error {
	svcs, err := c.services.List(labels.Everything())
	if err != nil {
		return fmt.Errorf("service-lb-controller: listing services: %w", err)
	}
	slices.SortFunc(svcs, func(a, b *corev1.Service) int {
		return a.CreationTimestamp.Compare(b.CreationTimestamp.Time)
	})
	for _, svc := range svcs {
		if !ours(svc) {
			continue
		}
		for _, ip := range c.ingressInPool(svc) {
			if c.alloc.claim(key(svc), ip) {
				break
			}
		}
	}
	return nil
}

func key(svc *corev1.Service) string { return svc.Namespace + "/" + svc.Name }

// ours says whether the Service asks this controller for an address:
// a LoadBalancer without a loadBalancerClass, which names another
// implementation.
func ours(svc *corev1.Service) bool {
	return svc.Spec.Type == corev1.ServiceTypeLoadBalancer && svc.Spec.LoadBalancerClass == nil
}

func (c *controller) ingressInPool(svc *corev1.Service) []netip.Addr {
	var out []netip.Addr
	for _, ing := range svc.Status.LoadBalancer.Ingress {
		if ip, err := netip.ParseAddr(ing.IP); err == nil && c.alloc.pool.Contains(ip) {
			out = append(out, ip)
		}
	}
	return out
}

func (c *controller) sync(ctx context.Context, k string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(k)
	if err != nil {
		return nil
	}
	svc, err := c.services.Services(ns).Get(name)
	if apierrors.IsNotFound(err) {
		c.releaseAndRetry(k)
		return nil
	}
	if err != nil {
		return fmt.Errorf("service %s: %w", k, err)
	}
	if !ours(svc) {
		delete(c.pending, k)
		if len(c.ingressInPool(svc)) > 0 && svc.Spec.Type != corev1.ServiceTypeLoadBalancer {
			// The address went with the type: clear what we wrote.
			if err := c.setIngress(ctx, svc, nil); err != nil {
				return err
			}
		}
		c.releaseAndRetry(k)
		return nil
	}

	ip, ok := c.choose(svc)
	if !ok {
		if !c.pending[k] {
			c.recorder.Eventf(svc, corev1.EventTypeWarning, "AllocationFailed",
				"Failed to allocate IP for %q: no available IPs in pool %s", k, c.alloc.pool)
		}
		c.pending[k] = true
		return nil
	}
	delete(c.pending, k)
	want := []corev1.LoadBalancerIngress{{IP: ip.String(), IPMode: ptr.To(corev1.LoadBalancerIPModeVIP)}}
	if ingressEqual(svc.Status.LoadBalancer.Ingress, want) {
		return nil
	}
	if err := c.setIngress(ctx, svc, want); err != nil {
		return err
	}
	c.recorder.Eventf(svc, corev1.EventTypeNormal, "IPAllocated", "Assigned IP [%q]", ip.String())
	return nil
}

// choose picks the Service's address: spec.loadBalancerIP when it is in the
// pool and free, else the one it holds, else the lowest free one.
func (c *controller) choose(svc *corev1.Service) (netip.Addr, bool) {
	k := key(svc)
	if req, err := netip.ParseAddr(svc.Spec.LoadBalancerIP); err == nil && c.alloc.claim(k, req) {
		return req, true
	}
	if ip, held := c.alloc.byKey[k]; held {
		return ip, true
	}
	for _, ip := range c.ingressInPool(svc) {
		if c.alloc.claim(k, ip) {
			return ip, true
		}
	}
	return c.alloc.next(k)
}

func (c *controller) releaseAndRetry(k string) {
	delete(c.pending, k)
	if !c.alloc.release(k) {
		return
	}
	for p := range c.pending {
		c.ctrl.EnqueueKey(p)
	}
}

func (c *controller) setIngress(ctx context.Context, svc *corev1.Service, ingress []corev1.LoadBalancerIngress) error {
	up := svc.DeepCopy()
	up.Status.LoadBalancer.Ingress = ingress
	if _, err := c.client.CoreV1().Services(svc.Namespace).UpdateStatus(ctx, up, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("updating status of %s: %w", key(svc), err)
	}
	return nil
}

func ingressEqual(a, b []corev1.LoadBalancerIngress) bool {
	return slices.EqualFunc(a, b, func(x, y corev1.LoadBalancerIngress) bool {
		return x.IP == y.IP && x.Hostname == y.Hostname && ptr.Deref(x.IPMode, "") == ptr.Deref(y.IPMode, "") && len(x.Ports) == 0 && len(y.Ports) == 0
	})
}
