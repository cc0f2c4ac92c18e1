package statefulset

import (
	"context"
	"errors"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/wasmkube/wasmkube/control/controllers/history"
)

// syncRevisions returns the current and update revisions, creating the
// update revision for a new template and pruning unused history.
func (c *controller) syncRevisions(ctx context.Context, set *appsv1.StatefulSet, pods []*corev1.Pod) (cur, upd *appsv1.ControllerRevision, err error) {
	data, err := history.PatchData(&set.Spec.Template)
	if err != nil {
		return nil, nil, err
	}
	upd, owned, err := history.Sync(ctx, c.client, c.revisions, history.Want{
		Owner: set, GVK: setKind, Labels: set.Spec.Template.Labels,
		Hash: history.Hash(data, set.Status.CollisionCount), Data: data,
	})
	if errors.Is(err, history.ErrCollision) {
		fresh := set.DeepCopy()
		return nil, nil, history.BumpCollisions(ctx, fresh, "statefulset", &fresh.Status.CollisionCount,
			c.client.AppsV1().StatefulSets(set.Namespace).UpdateStatus)
	}
	if err != nil {
		return nil, nil, err
	}
	cur = upd
	for _, r := range owned {
		if r.Name == set.Status.CurrentRevision {
			cur = r
		}
	}
	// History is what is neither current nor update and no pod runs.
	live := map[string]bool{cur.Name: true, upd.Name: true}
	for _, p := range pods {
		live[p.Labels[appsv1.StatefulSetRevisionLabel]] = true
	}
	var unused []*appsv1.ControllerRevision
	for _, r := range owned {
		if !live[r.Name] {
			unused = append(unused, r)
		}
	}
	return cur, upd, history.Prune(ctx, c.client, set.Namespace, unused, set.Spec.RevisionHistoryLimit)
}
