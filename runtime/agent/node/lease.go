package node

import (
	"context"
	"fmt"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// runLease renews the node's Lease every quarter of its duration until
// ctx ends, so that three renewals can fail before the node lifecycle
// controller sees the Lease expire (upstream's ratio).
func (a *Agent) runLease(ctx context.Context) {
	interval := a.cfg.LeaseDuration / 4
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var cached *coordinationv1.Lease
	for {
		lease, err := a.renewLease(ctx, cached)
		if err != nil && ctx.Err() == nil {
			a.cfg.Log.Error("renewing node lease", "err", err)
		}
		cached = lease
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// renewLease updates the cached Lease, which costs one request while the
// agent is the only writer, and falls back to reading (or creating) it
// when the cache is stale. It returns the Lease to cache next time.
func (a *Agent) renewLease(ctx context.Context, cached *coordinationv1.Lease) (*coordinationv1.Lease, error) {
	leases := a.client.CoordinationV1().Leases(corev1.NamespaceNodeLease)
	if cached != nil {
		l := cached.DeepCopy()
		a.setLeaseSpec(l)
		if got, err := leases.Update(ctx, l, metav1.UpdateOptions{}); err == nil {
			return got, nil
		}
	}
	l, err := leases.Get(ctx, a.cfg.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		l = &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: a.cfg.Name, Namespace: corev1.NamespaceNodeLease}}
		if err := a.setLeaseOwner(ctx, l); err != nil {
			return nil, err
		}
		a.setLeaseSpec(l)
		got, err := leases.Create(ctx, l, metav1.CreateOptions{})
		if err != nil {
			return nil, fmt.Errorf("creating lease: %w", err)
		}
		return got, nil
	}
	if err != nil {
		return nil, fmt.Errorf("getting lease: %w", err)
	}
	if len(l.OwnerReferences) == 0 {
		if err := a.setLeaseOwner(ctx, l); err != nil {
			return nil, err
		}
	}
	a.setLeaseSpec(l)
	got, err := leases.Update(ctx, l, metav1.UpdateOptions{})
	if err != nil {
		return nil, fmt.Errorf("updating lease: %w", err)
	}
	return got, nil
}

func (a *Agent) setLeaseSpec(l *coordinationv1.Lease) {
	secs := max(int32(a.cfg.LeaseDuration/time.Second), 1)
	l.Spec.HolderIdentity = ptr.To(a.cfg.Name)
	l.Spec.LeaseDurationSeconds = ptr.To(secs)
	l.Spec.RenewTime = ptr.To(metav1.NewMicroTime(a.cfg.Now()))
}

// setLeaseOwner makes the Node own its Lease, as upstream does, so that
// deleting the Node garbage-collects the Lease.
func (a *Agent) setLeaseOwner(ctx context.Context, l *coordinationv1.Lease) error {
	n, err := a.client.CoreV1().Nodes().Get(ctx, a.cfg.Name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("getting node to own its lease: %w", err)
	}
	l.OwnerReferences = []metav1.OwnerReference{{
		APIVersion: corev1.SchemeGroupVersion.Version,
		Kind:       "Node",
		Name:       n.Name,
		UID:        n.UID,
	}}
	return nil
}
