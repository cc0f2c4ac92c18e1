package daemonset

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/wasmkube/wasmkube/control/controllers/history"
)

// syncRevisions makes sure the current template has a ControllerRevision
// with the highest revision number, prunes history beyond
// revisionHistoryLimit, and returns the current revision.
func (c *controller) syncRevisions(ctx context.Context, ds *appsv1.DaemonSet, pods []*corev1.Pod) (*appsv1.ControllerRevision, error) {
	// The hash covers the template itself, not the revision's patch as a
	// StatefulSet's does: existing revisions and pods are named by it.
	tmpl, err := json.Marshal(ds.Spec.Template)
	if err != nil {
		return nil, fmt.Errorf("hashing template: %w", err)
	}
	data, err := history.PatchData(&ds.Spec.Template)
	if err != nil {
		return nil, err
	}
	cur, owned, err := history.Sync(ctx, c.client, c.revisions, history.Want{
		Owner: ds, GVK: dsKind, Labels: ds.Spec.Template.Labels,
		Hash: history.Hash(tmpl, ds.Status.CollisionCount), Data: data,
	})
	if errors.Is(err, history.ErrCollision) {
		upd := ds.DeepCopy()
		return nil, history.BumpCollisions(ctx, upd, "daemonset", &upd.Status.CollisionCount,
			c.client.AppsV1().DaemonSets(ds.Namespace).UpdateStatus)
	}
	if err != nil {
		return nil, err
	}
	// History is what no pod runs any more.
	live := map[string]bool{}
	for _, p := range pods {
		live[p.Labels[appsv1.DefaultDaemonSetUniqueLabelKey]] = true
	}
	var unused []*appsv1.ControllerRevision
	for _, r := range owned {
		if r.Name != cur.Name && !live[r.Labels[appsv1.DefaultDaemonSetUniqueLabelKey]] {
			unused = append(unused, r)
		}
	}
	return cur, history.Prune(ctx, c.client, ds.Namespace, unused, ds.Spec.RevisionHistoryLimit)
}
