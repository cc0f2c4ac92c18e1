package statefulset

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

// templateHash names a template version; the collision count lets a clash
// with an unrelated revision be escaped, as upstream does.
func templateHash(data []byte, collisions *int32) string {
	h := fnv.New32a()
	h.Write(data)
	if collisions != nil {
		fmt.Fprintf(h, "%d", *collisions)
	}
	return rand.SafeEncodeString(fmt.Sprint(h.Sum32()))
}

// revisionData is upstream's ControllerRevision payload: a strategic merge
// patch replacing the template, which kubectl rollout undo applies.
func revisionData(set *appsv1.StatefulSet) ([]byte, error) {
	tmpl, err := json.Marshal(set.Spec.Template)
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

// templateOf reads the pod template back out of a revision.
func templateOf(rev *appsv1.ControllerRevision) (*corev1.PodTemplateSpec, error) {
	var p struct {
		Spec struct {
			Template corev1.PodTemplateSpec `json:"template"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(rev.Data.Raw, &p); err != nil {
		return nil, fmt.Errorf("revision %s: %w", rev.Name, err)
	}
	return &p.Spec.Template, nil
}

// syncRevisions returns the current and update revisions, creating the
// update revision for a new template and pruning unused history.
func (c *controller) syncRevisions(ctx context.Context, set *appsv1.StatefulSet, pods []*corev1.Pod) (cur, upd *appsv1.ControllerRevision, err error) {
	all, err := c.revisions.ControllerRevisions(set.Namespace).List(labels.Everything())
	if err != nil {
		return nil, nil, fmt.Errorf("listing revisions: %w", err)
	}
	var owned []*appsv1.ControllerRevision
	var maxRev int64
	for _, r := range all {
		if ref := metav1.GetControllerOf(r); ref != nil && ref.UID == set.UID {
			owned = append(owned, r)
			maxRev = max(maxRev, r.Revision)
		}
	}
	data, err := revisionData(set)
	if err != nil {
		return nil, nil, err
	}
	hash := templateHash(data, set.Status.CollisionCount)
	name := set.Name + "-" + hash
	revs := c.client.AppsV1().ControllerRevisions(set.Namespace)
	for _, r := range owned {
		if r.Name == name {
			upd = r
		}
	}
	switch {
	case upd == nil:
		want := &appsv1.ControllerRevision{
			ObjectMeta: metav1.ObjectMeta{
				Name: name, Namespace: set.Namespace, Labels: map[string]string{},
				OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(set, setKind)},
			},
			Data:     runtime.RawExtension{Raw: data},
			Revision: maxRev + 1,
		}
		for k, v := range set.Spec.Template.Labels {
			want.Labels[k] = v
		}
		want.Labels[appsv1.ControllerRevisionHashLabelKey] = hash
		upd, err = revs.Create(ctx, want, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			upd, err = revs.Get(ctx, name, metav1.GetOptions{})
			if err == nil && (!metav1.IsControlledBy(upd, set) || !bytes.Equal(upd.Data.Raw, data)) {
				return nil, nil, c.bumpCollisions(ctx, set)
			}
		}
		if err != nil {
			return nil, nil, fmt.Errorf("creating revision %s: %w", name, err)
		}
		owned = append(owned, upd)
	case !bytes.Equal(upd.Data.Raw, data):
		return nil, nil, c.bumpCollisions(ctx, set)
	case upd.Revision < maxRev:
		// Going back to an earlier template makes it the newest revision.
		fresh := upd.DeepCopy()
		fresh.Revision = maxRev + 1
		if upd, err = revs.Update(ctx, fresh, metav1.UpdateOptions{}); err != nil {
			return nil, nil, fmt.Errorf("renumbering revision %s: %w", name, err)
		}
	}
	cur = upd
	for _, r := range owned {
		if r.Name == set.Status.CurrentRevision {
			cur = r
		}
	}
	return cur, upd, c.pruneHistory(ctx, set, owned, cur, upd, pods)
}

func (c *controller) bumpCollisions(ctx context.Context, set *appsv1.StatefulSet) error {
	fresh := set.DeepCopy()
	n := int32(1)
	if fresh.Status.CollisionCount != nil {
		n = *fresh.Status.CollisionCount + 1
	}
	fresh.Status.CollisionCount = &n
	if _, err := c.client.AppsV1().StatefulSets(set.Namespace).UpdateStatus(ctx, fresh, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("bumping collision count: %w", err)
	}
	return fmt.Errorf("revision hash collision for statefulset %s/%s, collision count now %d", set.Namespace, set.Name, n)
}

// pruneHistory keeps revisionHistoryLimit revisions besides the current and
// update ones and those pods still run.
func (c *controller) pruneHistory(ctx context.Context, set *appsv1.StatefulSet, owned []*appsv1.ControllerRevision, cur, upd *appsv1.ControllerRevision, pods []*corev1.Pod) error {
	limit := 10
	if set.Spec.RevisionHistoryLimit != nil {
		limit = int(*set.Spec.RevisionHistoryLimit)
	}
	live := map[string]bool{cur.Name: true, upd.Name: true}
	for _, p := range pods {
		live[p.Labels[appsv1.StatefulSetRevisionLabel]] = true
	}
	var old []*appsv1.ControllerRevision
	for _, r := range owned {
		if !live[r.Name] {
			old = append(old, r)
		}
	}
	if len(old) <= limit {
		return nil
	}
	sort.Slice(old, func(i, j int) bool { return old[i].Revision < old[j].Revision })
	for _, r := range old[:len(old)-limit] {
		err := c.client.AppsV1().ControllerRevisions(set.Namespace).Delete(ctx, r.Name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("deleting revision %s: %w", r.Name, err)
		}
	}
	return nil
}
