package daemonset

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"sort"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/rand"
)

// templateHash names a template version. The collision count is mixed in
// so that a hash clash with an unrelated revision can be escaped by
// bumping it, as upstream does.
func templateHash(tmpl *corev1.PodTemplateSpec, collisions *int32) (string, error) {
	b, err := json.Marshal(tmpl)
	if err != nil {
		return "", fmt.Errorf("hashing template: %w", err)
	}
	h := fnv.New32a()
	h.Write(b)
	if collisions != nil {
		fmt.Fprintf(h, "%d", *collisions)
	}
	return rand.SafeEncodeString(fmt.Sprint(h.Sum32())), nil
}

// revisionData is what upstream stores in a DaemonSet's ControllerRevision:
// a strategic merge patch that replaces the template, which is what
// kubectl rollout undo applies.
func revisionData(ds *appsv1.DaemonSet) ([]byte, error) {
	tmpl, err := json.Marshal(ds.Spec.Template)
	if err != nil {
		return nil, fmt.Errorf("encoding template: %w", err)
	}
	var m map[string]any
	if err := json.Unmarshal(tmpl, &m); err != nil {
		return nil, fmt.Errorf("decoding template: %w", err)
	}
	m["$patch"] = "replace"
	return json.Marshal(map[string]any{"spec": map[string]any{"template": m}})
}

// syncRevisions makes sure the current template has a ControllerRevision
// with the highest revision number, prunes history beyond
// revisionHistoryLimit, and returns the current revision.
func (c *controller) syncRevisions(ctx context.Context, ds *appsv1.DaemonSet, pods []*corev1.Pod) (*appsv1.ControllerRevision, error) {
	all, err := c.revisions.ControllerRevisions(ds.Namespace).List(labels.Everything())
	if err != nil {
		return nil, fmt.Errorf("listing revisions: %w", err)
	}
	var owned []*appsv1.ControllerRevision
	var maxRev int64
	for _, r := range all {
		if ref := metav1.GetControllerOf(r); ref != nil && ref.UID == ds.UID {
			owned = append(owned, r)
			maxRev = max(maxRev, r.Revision)
		}
	}
	hash, err := templateHash(&ds.Spec.Template, ds.Status.CollisionCount)
	if err != nil {
		return nil, err
	}
	data, err := revisionData(ds)
	if err != nil {
		return nil, err
	}
	name := ds.Name + "-" + hash
	revs := c.client.AppsV1().ControllerRevisions(ds.Namespace)
	var cur *appsv1.ControllerRevision
	for _, r := range owned {
		if r.Name == name {
			cur = r
		}
	}
	if cur == nil {
		want := &appsv1.ControllerRevision{
			ObjectMeta: metav1.ObjectMeta{
				Name: name, Namespace: ds.Namespace, Labels: map[string]string{},
				OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(ds, dsKind)},
			},
			Data:     runtime.RawExtension{Raw: data},
			Revision: maxRev + 1,
		}
		for k, v := range ds.Spec.Template.Labels {
			want.Labels[k] = v
		}
		want.Labels[appsv1.DefaultDaemonSetUniqueLabelKey] = hash
		cur, err = revs.Create(ctx, want, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			// Our cache is behind, or the name clashes with a stranger.
			cur, err = revs.Get(ctx, name, metav1.GetOptions{})
			if err == nil && (!metav1.IsControlledBy(cur, ds) || !bytes.Equal(cur.Data.Raw, data)) {
				return nil, c.bumpCollisions(ctx, ds)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("creating revision %s: %w", name, err)
		}
	} else if !bytes.Equal(cur.Data.Raw, data) {
		return nil, c.bumpCollisions(ctx, ds)
	} else if cur.Revision < maxRev {
		// A rollback to an old template makes that revision the newest.
		upd := cur.DeepCopy()
		upd.Revision = maxRev + 1
		if cur, err = revs.Update(ctx, upd, metav1.UpdateOptions{}); err != nil {
			return nil, fmt.Errorf("renumbering revision %s: %w", name, err)
		}
	}
	return cur, c.pruneHistory(ctx, ds, owned, cur, pods)
}

func (c *controller) bumpCollisions(ctx context.Context, ds *appsv1.DaemonSet) error {
	upd := ds.DeepCopy()
	n := int32(0)
	if upd.Status.CollisionCount != nil {
		n = *upd.Status.CollisionCount
	}
	n++
	upd.Status.CollisionCount = &n
	if _, err := c.client.AppsV1().DaemonSets(ds.Namespace).UpdateStatus(ctx, upd, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("bumping collision count: %w", err)
	}
	return fmt.Errorf("revision hash collision for daemonset %s/%s, collision count now %d", ds.Namespace, ds.Name, n)
}

// pruneHistory deletes the oldest revisions no pod runs any more, keeping
// revisionHistoryLimit of them.
func (c *controller) pruneHistory(ctx context.Context, ds *appsv1.DaemonSet, owned []*appsv1.ControllerRevision, cur *appsv1.ControllerRevision, pods []*corev1.Pod) error {
	limit := 10
	if ds.Spec.RevisionHistoryLimit != nil {
		limit = int(*ds.Spec.RevisionHistoryLimit)
	}
	live := map[string]bool{}
	for _, p := range pods {
		live[p.Labels[appsv1.DefaultDaemonSetUniqueLabelKey]] = true
	}
	var old []*appsv1.ControllerRevision
	for _, r := range owned {
		if r.Name != cur.Name && !live[r.Labels[appsv1.DefaultDaemonSetUniqueLabelKey]] {
			old = append(old, r)
		}
	}
	if len(old) <= limit {
		return nil
	}
	sort.Slice(old, func(i, j int) bool { return old[i].Revision < old[j].Revision })
	for _, r := range old[:len(old)-limit] {
		err := c.client.AppsV1().ControllerRevisions(ds.Namespace).Delete(ctx, r.Name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("deleting revision %s: %w", r.Name, err)
		}
	}
	return nil
}
