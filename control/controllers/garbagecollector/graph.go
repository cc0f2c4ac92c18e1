package garbagecollector

import (
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

// node is what the collector knows of one object.
type node struct {
	gvr        schema.GroupVersionResource
	namespace  string
	name       string
	uid        types.UID
	owners     []metav1.OwnerReference
	deleting   bool
	finalizers []string
}

func (n *node) hasFinalizer(f string) bool {
	for _, x := range n.finalizers {
		if x == f {
			return true
		}
	}
	return false
}

// graph indexes objects by UID and dependents by owner UID.
type graph struct {
	mu         sync.RWMutex
	nodes      map[types.UID]*node
	dependents map[types.UID]map[types.UID]bool
}

func newGraph() *graph {
	return &graph{nodes: map[types.UID]*node{}, dependents: map[types.UID]map[types.UID]bool{}}
}

func nodeOf(gvr schema.GroupVersionResource, m metav1.Object) *node {
	return &node{
		gvr: gvr, namespace: m.GetNamespace(), name: m.GetName(), uid: m.GetUID(),
		owners:     append([]metav1.OwnerReference(nil), m.GetOwnerReferences()...),
		deleting:   m.GetDeletionTimestamp() != nil,
		finalizers: append([]string(nil), m.GetFinalizers()...),
	}
}

// set records n, replacing what was known of the same UID, and returns
// the previous node (nil if new).
func (g *graph) set(n *node) *node {
	g.mu.Lock()
	defer g.mu.Unlock()
	old := g.nodes[n.uid]
	if old != nil {
		for _, o := range old.owners {
			delete(g.dependents[o.UID], n.uid)
		}
	}
	g.nodes[n.uid] = n
	for _, o := range n.owners {
		if g.dependents[o.UID] == nil {
			g.dependents[o.UID] = map[types.UID]bool{}
		}
		g.dependents[o.UID][n.uid] = true
	}
	return old
}

func (g *graph) remove(uid types.UID) *node {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := g.nodes[uid]
	if n == nil {
		return nil
	}
	for _, o := range n.owners {
		delete(g.dependents[o.UID], uid)
		if len(g.dependents[o.UID]) == 0 {
			delete(g.dependents, o.UID)
		}
	}
	delete(g.nodes, uid)
	return n
}

func (g *graph) get(uid types.UID) *node {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.nodes[uid]
}

// dependentsOf returns the known dependents of an owner.
func (g *graph) dependentsOf(owner types.UID) []*node {
	g.mu.RLock()
	defer g.mu.RUnlock()
	var out []*node
	for uid := range g.dependents[owner] {
		if n := g.nodes[uid]; n != nil {
			out = append(out, n)
		}
	}
	return out
}
