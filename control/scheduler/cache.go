package scheduler

import (
	"sort"
	"sync"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// nodeInfo is one node with the sums of what its pods (bound or assumed)
// have claimed.
type nodeInfo struct {
	name string
	// node is nil while pods name a node the informer has not delivered yet
	// (or one already deleted): their claims are kept for when it appears.
	node *v1.Node
	// taints are the node's NoSchedule/NoExecute-relevant taints plus the
	// synthetic readiness taint (see readinessTaint).
	notReady    *v1.Taint
	alloc       resources
	allowedPods int64

	requested  resources
	nonZeroCPU int64
	nonZeroMem int64
	pods       map[types.UID]*podInfo
	ports      map[protoPort]map[string]int
	owners     map[types.UID]int
}

func newNodeInfo(name string) *nodeInfo {
	return &nodeInfo{
		name:   name,
		pods:   map[types.UID]*podInfo{},
		ports:  map[protoPort]map[string]int{},
		owners: map[types.UID]int{},
	}
}

func (n *nodeInfo) setNode(node *v1.Node) {
	n.node = node
	n.alloc = resourcesFrom(node.Status.Allocatable)
	n.allowedPods = node.Status.Allocatable.Pods().Value()
	n.notReady = readinessTaint(node)
}

// readinessTaint is the taint upstream's node lifecycle controller would put
// on a node that is not Ready, unless the node already carries it.
func readinessTaint(node *v1.Node) *v1.Taint {
	key := v1.TaintNodeNotReady
	ready := false
	for _, c := range node.Status.Conditions {
		if c.Type == v1.NodeReady {
			ready = c.Status == v1.ConditionTrue
			if c.Status == v1.ConditionUnknown {
				key = v1.TaintNodeUnreachable
			}
			break
		}
	}
	if ready {
		return nil
	}
	for _, t := range node.Spec.Taints {
		if t.Key == key && (t.Effect == v1.TaintEffectNoSchedule || t.Effect == v1.TaintEffectNoExecute) {
			return nil
		}
	}
	return &v1.Taint{Key: key, Effect: v1.TaintEffectNoSchedule}
}

func (n *nodeInfo) addPod(pi *podInfo) {
	n.pods[pi.pod.UID] = pi
	n.requested.add(&pi.req, 1)
	n.nonZeroCPU += pi.nonZeroCPU
	n.nonZeroMem += pi.nonZeroMem
	for _, p := range pi.ports {
		ips := n.ports[p.protoPort]
		if ips == nil {
			ips = map[string]int{}
			n.ports[p.protoPort] = ips
		}
		ips[p.ip]++
	}
	if pi.owner != "" {
		n.owners[pi.owner]++
	}
}

func (n *nodeInfo) removePod(pi *podInfo) {
	delete(n.pods, pi.pod.UID)
	n.requested.add(&pi.req, -1)
	n.nonZeroCPU -= pi.nonZeroCPU
	n.nonZeroMem -= pi.nonZeroMem
	for _, p := range pi.ports {
		if ips := n.ports[p.protoPort]; ips != nil {
			if ips[p.ip]--; ips[p.ip] <= 0 {
				delete(ips, p.ip)
			}
			if len(ips) == 0 {
				delete(n.ports, p.protoPort)
			}
		}
	}
	if pi.owner != "" {
		if n.owners[pi.owner]--; n.owners[pi.owner] <= 0 {
			delete(n.owners, pi.owner)
		}
	}
}

// cache is the scheduler's view of the cluster. One mutex guards it: a
// scheduling cycle holds it from the first filter to the assume, so that
// informer events cannot change a node between the decision and the claim.
type cache struct {
	mu    sync.Mutex
	nodes map[string]*nodeInfo
	// list is the nodes that exist, sorted by name, rebuilt when nodes come
	// and go so that a cycle walks a slice and not a map.
	list  []*nodeInfo
	dirty bool
	// podNode is where each accounted pod is counted.
	podNode map[types.UID]string
	assumed map[types.UID]bool
	// antiAffinityPods have required anti-affinity terms that constrain
	// every later pod; usually few, so the symmetric check is cheap.
	antiAffinityPods map[types.UID]*podInfo
}

func newCache() *cache {
	return &cache{
		nodes:            map[string]*nodeInfo{},
		podNode:          map[types.UID]string{},
		assumed:          map[types.UID]bool{},
		antiAffinityPods: map[types.UID]*podInfo{},
	}
}

func (c *cache) nodeLocked(name string) *nodeInfo {
	n := c.nodes[name]
	if n == nil {
		n = newNodeInfo(name)
		c.nodes[name] = n
	}
	return n
}

func (c *cache) setNode(node *v1.Node) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.nodeLocked(node.Name)
	if n.node == nil {
		c.dirty = true
	}
	n.setNode(node)
}

func (c *cache) removeNode(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.nodes[name]
	if n == nil {
		return
	}
	n.node = nil
	c.dirty = true
	if len(n.pods) == 0 {
		delete(c.nodes, name)
	}
}

// nodeListLocked returns the existing nodes in a stable order.
func (c *cache) nodeListLocked() []*nodeInfo {
	if c.dirty {
		c.list = c.list[:0]
		for _, n := range c.nodes {
			if n.node != nil {
				c.list = append(c.list, n)
			}
		}
		sort.Slice(c.list, func(i, j int) bool { return c.list[i].name < c.list[j].name })
		c.dirty = false
	}
	return c.list
}

func (c *cache) addPodLocked(pi *podInfo, nodeName string) {
	c.nodeLocked(nodeName).addPod(pi)
	c.podNode[pi.pod.UID] = nodeName
	if len(pi.antiAffinity) > 0 {
		c.antiAffinityPods[pi.pod.UID] = pi
	}
}

func (c *cache) removePodLocked(uid types.UID) {
	nodeName, ok := c.podNode[uid]
	if !ok {
		return
	}
	delete(c.podNode, uid)
	delete(c.assumed, uid)
	delete(c.antiAffinityPods, uid)
	n := c.nodes[nodeName]
	if n == nil {
		return
	}
	if pi := n.pods[uid]; pi != nil {
		n.removePod(pi)
	}
	if n.node == nil && len(n.pods) == 0 {
		delete(c.nodes, nodeName)
	}
}

// setPod records a bound pod as the informer shows it. It replaces any
// earlier version, including the assumed one, which it thereby confirms.
func (c *cache) setPod(pi *podInfo) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.removePodLocked(pi.pod.UID)
	c.addPodLocked(pi, pi.pod.Spec.NodeName)
}

func (c *cache) removePod(uid types.UID) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.podNode[uid]
	c.removePodLocked(uid)
	return ok
}

// assumeLocked counts a pod on the node chosen for it before the binding is
// confirmed.
func (c *cache) assumeLocked(pi *podInfo, nodeName string) {
	c.removePodLocked(pi.pod.UID)
	c.addPodLocked(pi, nodeName)
	c.assumed[pi.pod.UID] = true
}

// forget undoes assume after a failed binding, unless the informer has
// meanwhile confirmed the pod.
func (c *cache) forget(uid types.UID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.assumed[uid] {
		c.removePodLocked(uid)
	}
}

func (c *cache) isAssumed(uid types.UID) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.assumed[uid]
}
