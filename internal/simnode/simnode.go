package simnode

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"

	"github.com/wasmkube/wasmkube/control/controllers/framework"
)

// Annotations that steer a simulated pod's life; see the package doc.
const (
	AnnotationExitCode = "simnode.wasmkube.io/exit-code"
	AnnotationRunFor   = "simnode.wasmkube.io/run-for"
)

// NodeSpec describes one simulated node.
type NodeSpec struct {
	Name        string
	CPU, Memory string // quantities such as "4" and "8Gi"; defaults "4" and "8Gi"
	Pods        int    // default 110
	Labels      map[string]string
	Taints      []corev1.Taint
}

// Options configure a simulated cluster.
type Options struct {
	Nodes []NodeSpec
	// Bind binds pods nobody scheduled, round robin, for tests without a
	// scheduler.
	Bind bool
	// ReadyDelay is how long a started pod stays not Ready, so that tests
	// can watch rollouts and minReadySeconds at work.
	ReadyDelay time.Duration
	// LeaseInterval is how often node Leases are renewed (default 5s).
	LeaseInterval time.Duration
}

// leaseDuration is what the Lease advertises; upstream's default.
const leaseDuration = 40

// Cluster is a set of running simulated nodes.
type Cluster struct {
	client kubernetes.Interface
	opts   Options
	pods   corelisters.PodLister
	ctrl   *framework.Controller
	cancel context.CancelFunc
	done   chan struct{}

	mu     sync.Mutex
	nodes  map[string]*node
	order  []string // node names in Options order, for round robin
	next   int
	nextIP map[string]int
	podIPs map[string]string // pod UID → IP, stable across status writes
}

type node struct {
	index   int
	stopped bool
	cancel  context.CancelFunc
	renewed chan struct{} // closed when the lease loop has exited
	hostIP  string
}

// Start registers the nodes and starts their leases and kubelets. It
// returns once every Node exists and the pod informer has synced.
func Start(ctx context.Context, client kubernetes.Interface, opts Options) (*Cluster, error) {
	if len(opts.Nodes) == 0 {
		return nil, errors.New("simnode: no nodes")
	}
	if opts.LeaseInterval <= 0 {
		opts.LeaseInterval = 5 * time.Second
	}
	runCtx, cancel := context.WithCancel(context.Background())
	c := &Cluster{
		client: client, opts: opts, cancel: cancel, done: make(chan struct{}),
		nodes: map[string]*node{}, nextIP: map[string]int{}, podIPs: map[string]string{},
	}
	for i, spec := range opts.Nodes {
		if _, dup := c.nodes[spec.Name]; dup {
			cancel()
			return nil, fmt.Errorf("simnode: node %q listed twice", spec.Name)
		}
		n := &node{index: i, hostIP: fmt.Sprintf("10.240.%d.%d", i/250, i%250+1)}
		if err := c.register(ctx, spec, n); err != nil {
			cancel()
			return nil, err
		}
		nodeCtx, nodeCancel := context.WithCancel(runCtx)
		n.cancel, n.renewed = nodeCancel, make(chan struct{})
		c.nodes[spec.Name] = n
		c.order = append(c.order, spec.Name)
		go c.renewLease(nodeCtx, spec.Name, n.renewed)
	}

	factory := informers.NewSharedInformerFactory(client, 0)
	podInformer := factory.Core().V1().Pods()
	c.pods = podInformer.Lister()
	c.ctrl = framework.New("simnode", c.syncPod)
	if _, err := podInformer.Informer().AddEventHandler(c.ctrl.Handler()); err != nil {
		cancel()
		return nil, fmt.Errorf("simnode: pod handler: %w", err)
	}
	factory.Start(runCtx.Done())
	synced := podInformer.Informer().HasSynced
	go func() {
		defer close(c.done)
		defer factory.Shutdown()
		_ = c.ctrl.Run(runCtx, 2, synced)
	}()
	if !cache.WaitForCacheSync(ctx.Done(), synced) {
		c.Stop()
		return nil, fmt.Errorf("simnode: pod informer did not sync: %w", ctx.Err())
	}
	return c, nil
}

// StopNode makes a node go silent: its Lease is no longer renewed and its
// kubelet no longer touches its pods, as when a machine loses power.
// It returns once no renewal is in flight, so a test can rely on the Lease
// aging from then on.
func (c *Cluster) StopNode(name string) {
	c.mu.Lock()
	n, ok := c.nodes[name]
	if ok {
		n.stopped = true
		n.cancel()
	}
	c.mu.Unlock()
	if ok {
		<-n.renewed
	}
}

// Stop stops every node and waits for the workers to exit. The Node objects
// stay: the cluster's API server is the test's to tear down.
func (c *Cluster) Stop() {
	c.mu.Lock()
	for _, n := range c.nodes {
		n.stopped = true
	}
	c.mu.Unlock()
	c.cancel()
	<-c.done
	for _, n := range c.nodes {
		<-n.renewed
	}
}

// running returns the node if it exists and has not been stopped.
func (c *Cluster) running(name string) (*node, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, ok := c.nodes[name]
	if !ok || n.stopped {
		return nil, false
	}
	return n, true
}

func (c *Cluster) register(ctx context.Context, spec NodeSpec, n *node) error {
	capacity, err := capacityOf(spec)
	if err != nil {
		return err
	}
	labels := map[string]string{
		corev1.LabelHostname:   spec.Name,
		corev1.LabelOSStable:   "linux",
		corev1.LabelArchStable: "amd64",
	}
	for k, v := range spec.Labels {
		labels[k] = v
	}
	want := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: spec.Name, Labels: labels},
		Spec: corev1.NodeSpec{
			PodCIDR:  fmt.Sprintf("10.244.%d.0/24", n.index),
			PodCIDRs: []string{fmt.Sprintf("10.244.%d.0/24", n.index)},
			Taints:   spec.Taints,
		},
	}
	nodes := c.client.CoreV1().Nodes()
	got, err := nodes.Create(ctx, want, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		// A re-registering node takes over the object, as a restarted kubelet does.
		got, err = nodes.Get(ctx, spec.Name, metav1.GetOptions{})
		if err == nil {
			got.Labels, got.Spec.Taints = labels, spec.Taints
			got, err = nodes.Update(ctx, got, metav1.UpdateOptions{})
		}
	}
	if err != nil {
		return fmt.Errorf("simnode: registering node %s: %w", spec.Name, err)
	}
	now := metav1.Now()
	got.Status = corev1.NodeStatus{
		Capacity:    capacity,
		Allocatable: capacity,
		Phase:       corev1.NodeRunning,
		Conditions: []corev1.NodeCondition{
			nodeCondition(corev1.NodeReady, corev1.ConditionTrue, "KubeletReady", "kubelet is posting ready status", now),
			nodeCondition(corev1.NodeMemoryPressure, corev1.ConditionFalse, "KubeletHasSufficientMemory", "kubelet has sufficient memory available", now),
			nodeCondition(corev1.NodeDiskPressure, corev1.ConditionFalse, "KubeletHasNoDiskPressure", "kubelet has no disk pressure", now),
			nodeCondition(corev1.NodePIDPressure, corev1.ConditionFalse, "KubeletHasSufficientPID", "kubelet has sufficient PID available", now),
		},
		Addresses: []corev1.NodeAddress{
			{Type: corev1.NodeInternalIP, Address: n.hostIP},
			{Type: corev1.NodeHostName, Address: spec.Name},
		},
		NodeInfo: corev1.NodeSystemInfo{
			MachineID: spec.Name, SystemUUID: spec.Name, BootID: spec.Name,
			KernelVersion: "6.1.0-simnode", OSImage: "simnode", OperatingSystem: "linux",
			Architecture: "amd64", ContainerRuntimeVersion: "simnode://1.0", KubeletVersion: "v1.37.0-simnode",
		},
	}
	if _, err := nodes.UpdateStatus(ctx, got, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("simnode: node %s status: %w", spec.Name, err)
	}
	return nil
}

func nodeCondition(t corev1.NodeConditionType, s corev1.ConditionStatus, reason, msg string, now metav1.Time) corev1.NodeCondition {
	return corev1.NodeCondition{Type: t, Status: s, Reason: reason, Message: msg, LastHeartbeatTime: now, LastTransitionTime: now}
}

func capacityOf(spec NodeSpec) (corev1.ResourceList, error) {
	cpu, mem, pods := spec.CPU, spec.Memory, spec.Pods
	if cpu == "" {
		cpu = "4"
	}
	if mem == "" {
		mem = "8Gi"
	}
	if pods <= 0 {
		pods = 110
	}
	cpuQ, err := resource.ParseQuantity(cpu)
	if err != nil {
		return nil, fmt.Errorf("simnode: node %s cpu %q: %w", spec.Name, cpu, err)
	}
	memQ, err := resource.ParseQuantity(mem)
	if err != nil {
		return nil, fmt.Errorf("simnode: node %s memory %q: %w", spec.Name, mem, err)
	}
	return corev1.ResourceList{
		corev1.ResourceCPU:              cpuQ,
		corev1.ResourceMemory:           memQ,
		corev1.ResourcePods:             *resource.NewQuantity(int64(pods), resource.DecimalSI),
		corev1.ResourceEphemeralStorage: resource.MustParse("20Gi"),
	}, nil
}

// renewLease keeps the node's Lease fresh until the node is stopped.
func (c *Cluster) renewLease(ctx context.Context, name string, done chan<- struct{}) {
	defer close(done)
	leases := c.client.CoordinationV1().Leases(corev1.NamespaceNodeLease)
	tick := time.NewTicker(c.opts.LeaseInterval)
	defer tick.Stop()
	for {
		// Not tied to ctx: a canceled request may still commit on the
		// server, and StopNode promises that renewals have ended when it
		// returns, so each renewal runs to completion instead. An error is
		// retried on the next tick, as a real node under load would.
		reqCtx, cancel := context.WithTimeout(context.Background(), c.opts.LeaseInterval+5*time.Second)
		_ = c.renewOnce(reqCtx, leases, name)
		cancel()
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

type leaseClient interface {
	Get(context.Context, string, metav1.GetOptions) (*coordinationv1.Lease, error)
	Create(context.Context, *coordinationv1.Lease, metav1.CreateOptions) (*coordinationv1.Lease, error)
	Update(context.Context, *coordinationv1.Lease, metav1.UpdateOptions) (*coordinationv1.Lease, error)
}

func (c *Cluster) renewOnce(ctx context.Context, leases leaseClient, name string) error {
	now := metav1.NewMicroTime(time.Now())
	lease, err := leases.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		lease = &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: corev1.NamespaceNodeLease},
			Spec: coordinationv1.LeaseSpec{
				HolderIdentity:       ptr.To(name),
				LeaseDurationSeconds: ptr.To[int32](leaseDuration),
				RenewTime:            &now,
			},
		}
		if n, err := c.client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{}); err == nil {
			// The node owns its Lease so that deleting the Node removes it.
			lease.OwnerReferences = []metav1.OwnerReference{{
				APIVersion: "v1", Kind: "Node", Name: name, UID: n.UID,
			}}
		}
		_, err = leases.Create(ctx, lease, metav1.CreateOptions{})
		return err
	}
	if err != nil {
		return err
	}
	lease.Spec.RenewTime = &now
	lease.Spec.HolderIdentity = ptr.To(name)
	_, err = leases.Update(ctx, lease, metav1.UpdateOptions{})
	return err
}
