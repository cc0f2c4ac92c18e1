package nodeipam

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/wasmkube/wasmkube/control/controllers/framework"
)

// Name is the controller's name and event source.
const Name = "node-ipam-controller"

// Defaults, upstream's flannel-style cluster CIDR and /24 per node.
const (
	DefaultClusterCIDR  = "10.244.0.0/16"
	DefaultNodeMaskSize = 24
)

// Options configure the allocator.
type Options struct {
	ClusterCIDR  string // default DefaultClusterCIDR
	NodeMaskSize int    // default DefaultNodeMaskSize for IPv4, 64 for IPv6
}

type controller struct {
	client   kubernetes.Interface
	nodes    corelisters.NodeLister
	ctrl     *framework.Controller
	alloc    *allocator
	recorder record.EventRecorder
}

// Validate checks that the options make an allocator: a parsable cluster
// CIDR and a node mask size at least as long as the cluster CIDR's, that
// splits it into at most 2^16 ranges. Zero fields take their defaults.
func (o Options) Validate() error {
	_, err := o.allocator()
	return err
}

// allocator applies the defaults and makes the options' allocator.
func (o Options) allocator() (*allocator, error) {
	if o.ClusterCIDR == "" {
		o.ClusterCIDR = DefaultClusterCIDR
	}
	cluster, err := netip.ParsePrefix(o.ClusterCIDR)
	if err != nil {
		return nil, fmt.Errorf("cluster CIDR: %w", err)
	}
	if o.NodeMaskSize == 0 {
		o.NodeMaskSize = DefaultNodeMaskSize
		if cluster.Addr().Is6() {
			o.NodeMaskSize = 64
		}
	}
	return newAllocator(cluster, o.NodeMaskSize)
}

// Starter runs the node IPAM controller.
func Starter(opts Options) framework.Starter {
	return func(cc *framework.Context) (func(context.Context) error, error) {
		alloc, err := opts.allocator()
		if err != nil {
			return nil, err
		}
		nodeInf := cc.Informers.Core().V1().Nodes()
		c := &controller{client: cc.Client, nodes: nodeInf.Lister(), alloc: alloc, recorder: cc.Recorder(Name)}
		c.ctrl = framework.New(Name, c.sync)
		if _, err := nodeInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc: c.ctrl.Enqueue,
			UpdateFunc: func(oldObj, newObj any) {
				old, cur := oldObj.(*corev1.Node), newObj.(*corev1.Node)
				// Only the CIDR fields matter; heartbeats would be noise.
				if old.Spec.PodCIDR != cur.Spec.PodCIDR || len(cur.Spec.PodCIDRs) == 0 {
					c.ctrl.Enqueue(cur)
				}
			},
			DeleteFunc: c.ctrl.Enqueue,
		}); err != nil {
			return nil, fmt.Errorf("node handler: %w", err)
		}
		synced := nodeInf.Informer().HasSynced
		return func(ctx context.Context) error {
			if !cache.WaitForNamedCacheSync(Name, ctx.Done(), synced) {
				return fmt.Errorf("%s: node informer did not sync: %w", Name, ctx.Err())
			}
			// Every range already held must be known before the first
			// allocation, or a restart could hand one out twice.
			if err := c.rebuild(); err != nil {
				return err
			}
			return c.ctrl.Run(ctx, 1, synced)
		}, nil
	}
}

func (c *controller) rebuild() error {
	nodes, err := c.nodes.List(labels.Everything())
	if err != nil {
		return fmt.Errorf("listing nodes: %w", err)
	}
	for _, n := range nodes {
		for _, cidr := range nodeCIDRs(n) {
			if err := c.alloc.occupy(n.Name, cidr); err != nil {
				c.recorder.Eventf(nodeRef(n), corev1.EventTypeWarning, "CIDRAssignmentFailed", "%v", err)
			}
		}
	}
	return nil
}

func nodeCIDRs(n *corev1.Node) []string {
	if len(n.Spec.PodCIDRs) > 0 {
		return n.Spec.PodCIDRs
	}
	if n.Spec.PodCIDR != "" {
		return []string{n.Spec.PodCIDR}
	}
	return nil
}

// nodeRef is how upstream addresses node events: Nodes are cluster-scoped
// and the event goes to the default namespace.
func nodeRef(n *corev1.Node) *corev1.ObjectReference {
	return &corev1.ObjectReference{APIVersion: "v1", Kind: "Node", Name: n.Name, UID: n.UID}
}

func (c *controller) sync(ctx context.Context, name string) error {
	node, err := c.nodes.Get(name)
	if apierrors.IsNotFound(err) {
		if c.alloc.release(name) {
			c.requeueWaiting()
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("node %s: %w", name, err)
	}
	if cidrs := nodeCIDRs(node); len(cidrs) > 0 {
		for _, cidr := range cidrs {
			if err := c.alloc.occupy(name, cidr); err != nil {
				c.recorder.Eventf(nodeRef(node), corev1.EventTypeWarning, "CIDRAssignmentFailed", "%v", err)
			}
		}
		return nil
	}
	cidr, err := c.alloc.allocate(name)
	if errors.Is(err, errFull) {
		c.recorder.Eventf(nodeRef(node), corev1.EventTypeNormal, "CIDRNotAvailable", "Node %s status is now: CIDRNotAvailable", name)
		return fmt.Errorf("node %s: %w", name, err)
	}
	if err != nil {
		return fmt.Errorf("node %s: %w", name, err)
	}
	patch, err := json.Marshal(map[string]any{"spec": map[string]any{
		"podCIDR": cidr.String(), "podCIDRs": []string{cidr.String()},
	}})
	if err != nil {
		return fmt.Errorf("node %s patch: %w", name, err)
	}
	_, err = c.client.CoreV1().Nodes().Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{})
	switch {
	case err == nil:
		return nil
	case apierrors.IsNotFound(err):
		c.alloc.release(name)
		return nil
	case apierrors.IsInvalid(err):
		// Someone set a range meanwhile (the field is immutable once
		// set); the next sync adopts theirs.
		c.alloc.release(name)
		c.recorder.Eventf(nodeRef(node), corev1.EventTypeWarning, "CIDRAssignmentFailed", "Node %s: %v", name, err)
		return fmt.Errorf("assigning %s to node %s: %w", cidr, name, err)
	default:
		// Kept allocated: the retry patches the same range.
		return fmt.Errorf("assigning %s to node %s: %w", cidr, name, err)
	}
}

// requeueWaiting enqueues the Nodes still without a range, after one was
// freed.
func (c *controller) requeueWaiting() {
	nodes, err := c.nodes.List(labels.Everything())
	if err != nil {
		return
	}
	for _, n := range nodes {
		if len(nodeCIDRs(n)) == 0 {
			c.ctrl.Enqueue(n)
		}
	}
}
