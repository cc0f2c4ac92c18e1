package garbagecollector

import (
	"context"
	"encoding/json"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/utils/ptr"
)

func (c *collector) resource(gvr schema.GroupVersionResource, namespace string) dynamic.ResourceInterface {
	if namespace == "" {
		return c.dynamic.Resource(gvr)
	}
	return c.dynamic.Resource(gvr).Namespace(namespace)
}

// latest reads an object afresh; nil when it is gone or was replaced by
// another object of the same name.
func (c *collector) latest(ctx context.Context, gvr schema.GroupVersionResource, namespace, name string, uid types.UID) (*unstructured.Unstructured, error) {
	obj, err := c.resource(gvr, namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s %s/%s: %w", gvr.Resource, namespace, name, err)
	}
	if obj.GetUID() != uid {
		return nil, nil
	}
	return obj, nil
}

type ownerState int

const (
	solid   ownerState = iota // exists and keeps the dependent
	absent                    // gone: the reference dangles
	waiting                   // being deleted in the foreground, waiting for dependents
)

// ownerState resolves one ownerReference of a dependent in namespace ns.
func (c *collector) ownerState(ctx context.Context, ns string, ref metav1.OwnerReference) (ownerState, error) {
	if o := c.graph.get(ref.UID); o != nil && o.name == ref.Name {
		return stateOf(o.deleting, o.finalizers), nil
	}
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil {
		return absent, nil
	}
	m, ok := c.kinds[schema.GroupKind{Group: gv.Group, Kind: ref.Kind}]
	if !ok {
		// A kind this server does not serve (yet): never delete on a guess.
		return solid, nil
	}
	if !m.namespaced {
		ns = ""
	}
	owner, err := c.latest(ctx, m.gvr, ns, ref.Name, ref.UID)
	if err != nil {
		return solid, err
	}
	if owner == nil {
		return absent, nil
	}
	return stateOf(owner.GetDeletionTimestamp() != nil, owner.GetFinalizers()), nil
}

func stateOf(deleting bool, finalizers []string) ownerState {
	if deleting {
		for _, f := range finalizers {
			if f == metav1.FinalizerDeleteDependents {
				return waiting
			}
		}
	}
	return solid
}

// checkOwners deletes a dependent none of whose owners remains, or drops
// references to vanished owners from one that has others.
func (c *collector) checkOwners(ctx context.Context, n *node) error {
	obj, err := c.latest(ctx, n.gvr, n.namespace, n.name, n.uid)
	if err != nil || obj == nil {
		return err
	}
	if obj.GetDeletionTimestamp() != nil {
		return nil
	}
	refs := obj.GetOwnerReferences()
	var keep []metav1.OwnerReference
	nSolid, nWaiting := 0, 0
	for _, ref := range refs {
		st, err := c.ownerState(ctx, n.namespace, ref)
		if err != nil {
			return err
		}
		switch st {
		case solid:
			nSolid++
			keep = append(keep, ref)
		case waiting:
			nWaiting++
		}
	}
	switch {
	case nSolid > 0:
		if len(keep) == len(refs) {
			return nil
		}
		return c.setOwnerRefs(ctx, obj, n.gvr, keep)
	case nWaiting > 0 && len(c.graph.dependentsOf(n.uid)) > 0:
		// An owner waits for us, and we have dependents: they go first.
		return c.delete(ctx, obj, n, metav1.DeletePropagationForeground)
	}
	policy := metav1.DeletePropagationBackground
	for _, f := range obj.GetFinalizers() {
		switch f {
		case metav1.FinalizerOrphanDependents:
			policy = metav1.DeletePropagationOrphan
		case metav1.FinalizerDeleteDependents:
			policy = metav1.DeletePropagationForeground
		}
	}
	return c.delete(ctx, obj, n, policy)
}

// delete deletes the dependent as it was read (obj): the resourceVersion
// precondition makes a dependent changed since (its owner references
// dropped by an orphaning owner, say) a conflict rather than a victim of
// a decision made on its old references; its update event brings it back
// to be judged again.
func (c *collector) delete(ctx context.Context, obj *unstructured.Unstructured, n *node, policy metav1.DeletionPropagation) error {
	err := c.resource(n.gvr, n.namespace).Delete(ctx, n.name, metav1.DeleteOptions{
		Preconditions:     &metav1.Preconditions{UID: ptr.To(n.uid), ResourceVersion: ptr.To(obj.GetResourceVersion())},
		PropagationPolicy: ptr.To(policy),
	})
	if err != nil {
		if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
			return nil // gone, replaced by a new object of the same name, or changed since it was read
		}
		return fmt.Errorf("deleting %s %s/%s: %w", n.gvr.Resource, n.namespace, n.name, err)
	}
	c.log.Info("deleted object whose owners are gone", "resource", n.gvr.Resource, "namespace", n.namespace, "name", n.name, "propagation", policy)
	return nil
}

// deleteDependents carries out foreground deletion: dependents are
// deleted, and the owner's finalizer goes once none with
// blockOwnerDeletion is left.
func (c *collector) deleteDependents(ctx context.Context, owner *node) error {
	blocking := 0
	for _, d := range c.graph.dependentsOf(owner.uid) {
		for _, ref := range d.owners {
			if ref.UID == owner.uid && ptr.Deref(ref.BlockOwnerDeletion, false) {
				blocking++
			}
		}
		c.enqueue(d.uid)
	}
	if blocking > 0 {
		c.ctrl.EnqueueAfter(string(owner.uid), retryAfter)
		return nil
	}
	return c.removeFinalizer(ctx, owner, metav1.FinalizerDeleteDependents)
}

// orphanDependents carries out orphan deletion: references to the owner
// are removed from its dependents, then the owner's finalizer.
func (c *collector) orphanDependents(ctx context.Context, owner *node) error {
	for _, d := range c.graph.dependentsOf(owner.uid) {
		obj, err := c.latest(ctx, d.gvr, d.namespace, d.name, d.uid)
		if err != nil {
			return err
		}
		if obj == nil {
			continue
		}
		var keep []metav1.OwnerReference
		for _, ref := range obj.GetOwnerReferences() {
			if ref.UID != owner.uid {
				keep = append(keep, ref)
			}
		}
		if len(keep) == len(obj.GetOwnerReferences()) {
			continue
		}
		if err := c.setOwnerRefs(ctx, obj, d.gvr, keep); err != nil {
			return err
		}
	}
	return c.removeFinalizer(ctx, owner, metav1.FinalizerOrphanDependents)
}

// metaPatch is a JSON merge patch of metadata; the resourceVersion makes it
// conditional on the object not having changed since it was read.
type metaPatch struct {
	Metadata struct {
		ResourceVersion string                   `json:"resourceVersion"`
		OwnerReferences *[]metav1.OwnerReference `json:"ownerReferences,omitempty"`
		Finalizers      *[]string                `json:"finalizers,omitempty"`
	} `json:"metadata"`
}

func (c *collector) patch(ctx context.Context, gvr schema.GroupVersionResource, namespace, name string, p *metaPatch) error {
	body, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("encoding patch: %w", err)
	}
	_, err = c.resource(gvr, namespace).Patch(ctx, name, types.MergePatchType, body, metav1.PatchOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("patching %s %s/%s: %w", gvr.Resource, namespace, name, err)
	}
	return nil
}

func (c *collector) setOwnerRefs(ctx context.Context, obj *unstructured.Unstructured, gvr schema.GroupVersionResource, refs []metav1.OwnerReference) error {
	var p metaPatch
	p.Metadata.ResourceVersion = obj.GetResourceVersion()
	if refs == nil {
		refs = []metav1.OwnerReference{}
	}
	p.Metadata.OwnerReferences = &refs
	return c.patch(ctx, gvr, obj.GetNamespace(), obj.GetName(), &p)
}

func (c *collector) removeFinalizer(ctx context.Context, n *node, finalizer string) error {
	obj, err := c.latest(ctx, n.gvr, n.namespace, n.name, n.uid)
	if err != nil || obj == nil {
		return err
	}
	rest := []string{}
	for _, f := range obj.GetFinalizers() {
		if f != finalizer {
			rest = append(rest, f)
		}
	}
	if len(rest) == len(obj.GetFinalizers()) {
		return nil
	}
	var p metaPatch
	p.Metadata.ResourceVersion = obj.GetResourceVersion()
	p.Metadata.Finalizers = &rest
	return c.patch(ctx, n.gvr, n.namespace, n.name, &p)
}
