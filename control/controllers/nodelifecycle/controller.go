package nodelifecycle

import (
	"context"
	"fmt"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/client-go/kubernetes"
	coordinationlisters "k8s.io/client-go/listers/coordination/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/wasmkube/wasmkube/control/controllers/framework"
	"github.com/wasmkube/wasmkube/control/controllers/tombstone"
)

// Names of the two loops; the event sources are upstream's.
const (
	Name          = "node-lifecycle-controller"
	EvictionName  = "taint-eviction-controller"
	podNodeIndex  = "nodelifecycle.spec.nodeName"
	defaultGrace  = 40 * time.Second
	defaultBoot   = 60 * time.Second
	requeueMargin = 50 * time.Millisecond
)

// Options configure the timing.
type Options struct {
	// GracePeriod is how long a node may stay silent before it is marked
	// Unknown (upstream's --node-monitor-grace-period); default 40s.
	GracePeriod time.Duration
	// StartupGracePeriod replaces it for a node that never posted a Ready
	// condition; default 60s.
	StartupGracePeriod time.Duration
}

type controller struct {
	client   kubernetes.Interface
	nodes    corelisters.NodeLister
	pods     corelisters.PodLister
	podIndex cache.Indexer
	leases   coordinationlisters.LeaseLister
	nodeCtrl *framework.Controller
	podCtrl  *framework.Controller
	recorder record.EventRecorder
	evictRec record.EventRecorder
	now      func() time.Time
	opts     Options

	mu sync.Mutex
	// health is what the controller last saw of each node's heartbeats.
	health map[string]*nodeHealth
	// scheduled holds, per pod key, when the pod first came under the
	// NoExecute taints it tolerates for a while: eviction time is counted
	// from there.
	scheduled map[string]time.Time
}

type nodeHealth struct {
	probe     time.Time // controller clock at the last observed change
	renew     string    // the Lease's renewTime as last seen
	heartbeat time.Time // the Ready condition's lastHeartbeatTime as last seen
	ready     corev1.ConditionStatus
}

// Starter runs the node lifecycle controller and the taint-eviction loop.
func Starter(opts Options) framework.Starter {
	return func(cc *framework.Context) (func(context.Context) error, error) {
		if opts.GracePeriod <= 0 {
			opts.GracePeriod = defaultGrace
		}
		if opts.StartupGracePeriod <= 0 {
			opts.StartupGracePeriod = defaultBoot
		}
		nodeInf := cc.Informers.Core().V1().Nodes()
		podInf := cc.Informers.Core().V1().Pods()
		leaseInf := cc.Informers.Coordination().V1().Leases()
		if err := podInf.Informer().AddIndexers(cache.Indexers{podNodeIndex: func(obj any) ([]string, error) {
			if p, ok := obj.(*corev1.Pod); ok && p.Spec.NodeName != "" {
				return []string{p.Spec.NodeName}, nil
			}
			return nil, nil
		}}); err != nil {
			return nil, fmt.Errorf("pod node index: %w", err)
		}
		c := &controller{
			client: cc.Client, nodes: nodeInf.Lister(), pods: podInf.Lister(),
			podIndex: podInf.Informer().GetIndexer(), leases: leaseInf.Lister(),
			recorder: cc.Recorder(Name), evictRec: cc.Recorder(EvictionName),
			now: cc.Now, opts: opts,
			health: map[string]*nodeHealth{}, scheduled: map[string]time.Time{},
		}
		if c.now == nil {
			c.now = time.Now
		}
		c.nodeCtrl = framework.New(Name, c.syncNode)
		c.podCtrl = framework.New(EvictionName, c.syncPod)
		if _, err := nodeInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    c.nodeCtrl.Enqueue,
			UpdateFunc: c.nodeUpdated,
			DeleteFunc: c.nodeCtrl.Enqueue,
		}); err != nil {
			return nil, fmt.Errorf("node handler: %w", err)
		}
		if _, err := leaseInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    c.leaseEvent,
			UpdateFunc: func(_, obj any) { c.leaseEvent(obj) },
		}); err != nil {
			return nil, fmt.Errorf("lease handler: %w", err)
		}
		if _, err := podInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    c.podEvent,
			UpdateFunc: func(_, obj any) { c.podEvent(obj) },
			DeleteFunc: c.podEvent,
		}); err != nil {
			return nil, fmt.Errorf("pod handler: %w", err)
		}
		synced := []cache.InformerSynced{nodeInf.Informer().HasSynced, podInf.Informer().HasSynced, leaseInf.Informer().HasSynced}
		return func(ctx context.Context) error {
			errs := make(chan error, 2)
			go func() { errs <- c.nodeCtrl.Run(ctx, 2, synced...) }()
			go func() { errs <- c.podCtrl.Run(ctx, 4, synced...) }()
			first := <-errs
			second := <-errs
			if first != nil {
				return first
			}
			return second
		}, nil
	}
}

func (c *controller) leaseEvent(obj any) {
	if l, ok := obj.(*coordinationv1.Lease); ok && l.Namespace == corev1.NamespaceNodeLease {
		c.nodeCtrl.EnqueueKey(l.Name)
	}
}

func (c *controller) podEvent(obj any) {
	if p, ok := tombstone.Unwrap[*corev1.Pod](obj); ok && p.Spec.NodeName != "" {
		c.podCtrl.Enqueue(p)
	}
}

// nodeUpdated resyncs the node, and its pods when what decides their fate
// (NoExecute taints, readiness) changed.
func (c *controller) nodeUpdated(oldObj, newObj any) {
	old, cur := oldObj.(*corev1.Node), newObj.(*corev1.Node)
	c.nodeCtrl.Enqueue(cur)
	if readyStatus(old) == readyStatus(cur) &&
		apiequality.Semantic.DeepEqual(noExecute(old.Spec.Taints), noExecute(cur.Spec.Taints)) {
		return
	}
	c.enqueuePodsOn(cur.Name)
}

func (c *controller) enqueuePodsOn(node string) {
	objs, err := c.podIndex.ByIndex(podNodeIndex, node)
	if err != nil {
		return
	}
	for _, o := range objs {
		c.podCtrl.Enqueue(o)
	}
}

func readyCondition(n *corev1.Node) *corev1.NodeCondition {
	for i := range n.Status.Conditions {
		if n.Status.Conditions[i].Type == corev1.NodeReady {
			return &n.Status.Conditions[i]
		}
	}
	return nil
}

// readyStatus is the Ready condition's status, "" when there is none.
func readyStatus(n *corev1.Node) corev1.ConditionStatus {
	if c := readyCondition(n); c != nil {
		return c.Status
	}
	return ""
}

func noExecute(taints []corev1.Taint) []corev1.Taint {
	var out []corev1.Taint
	for _, t := range taints {
		if t.Effect == corev1.TaintEffectNoExecute {
			out = append(out, t)
		}
	}
	return out
}
