package history

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"sort"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
)

// ErrCollision means the revision name for the template is taken by one
// with other data or another owner. The owner must bump its collision
// count (see BumpCollisions) so that the next hash differs.
var ErrCollision = errors.New("revision hash collision")

// defaultLimit is revisionHistoryLimit when unset, as upstream defaults it.
const defaultLimit = 10

// Hash names a template version. The collision count is mixed in so that
// a hash clash with an unrelated revision can be escaped by bumping it, as
// upstream does.
func Hash(data []byte, collisions *int32) string {
	h := fnv.New32a()
	h.Write(data)
	if collisions != nil {
		fmt.Fprintf(h, "%d", *collisions)
	}
	return rand.SafeEncodeString(fmt.Sprint(h.Sum32()))
}

// PatchData is what upstream stores in a ControllerRevision: a strategic
// merge patch that replaces the template, which is what kubectl rollout
// undo applies.
func PatchData(tmpl *corev1.PodTemplateSpec) ([]byte, error) {
	b, err := json.Marshal(tmpl)
	if err != nil {
		return nil, fmt.Errorf("encoding template: %w", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("decoding template: %w", err)
	}
	m["$patch"] = "replace"
	return json.Marshal(map[string]any{"spec": map[string]any{"template": m}})
}

// Template reads the pod template back out of a revision.
func Template(rev *appsv1.ControllerRevision) (*corev1.PodTemplateSpec, error) {
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

// Want is the revision an owner's current template calls for.
type Want struct {
	Owner metav1.Object
	GVK   schema.GroupVersionKind
	// Labels are the template's; the revision carries them so that it can
	// be found the way the pods are.
	Labels map[string]string
	Hash   string
	Data   []byte
}

// Sync makes sure the revision w calls for exists and has the highest
// revision number among the owner's, and returns it with all the owner's
// revisions (it included). It returns ErrCollision when the name is taken
// by a revision that is not this one.
func Sync(ctx context.Context, client kubernetes.Interface, revisions appslisters.ControllerRevisionLister, w Want) (*appsv1.ControllerRevision, []*appsv1.ControllerRevision, error) {
	ns := w.Owner.GetNamespace()
	all, err := revisions.ControllerRevisions(ns).List(labels.Everything())
	if err != nil {
		return nil, nil, fmt.Errorf("listing revisions: %w", err)
	}
	var owned []*appsv1.ControllerRevision
	var maxRev int64
	var cur *appsv1.ControllerRevision
	name := w.Owner.GetName() + "-" + w.Hash
	for _, r := range all {
		if ref := metav1.GetControllerOf(r); ref != nil && ref.UID == w.Owner.GetUID() {
			owned = append(owned, r)
			maxRev = max(maxRev, r.Revision)
			if r.Name == name {
				cur = r
			}
		}
	}
	revs := client.AppsV1().ControllerRevisions(ns)
	switch {
	case cur == nil:
		want := &appsv1.ControllerRevision{
			ObjectMeta: metav1.ObjectMeta{
				Name: name, Namespace: ns, Labels: map[string]string{},
				OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(w.Owner, w.GVK)},
			},
			Data:     runtime.RawExtension{Raw: w.Data},
			Revision: maxRev + 1,
		}
		for k, v := range w.Labels {
			want.Labels[k] = v
		}
		want.Labels[appsv1.ControllerRevisionHashLabelKey] = w.Hash
		cur, err = revs.Create(ctx, want, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			// Our cache is behind, or the name clashes with a stranger.
			cur, err = revs.Get(ctx, name, metav1.GetOptions{})
			if err == nil && (!metav1.IsControlledBy(cur, w.Owner) || !bytes.Equal(cur.Data.Raw, w.Data)) {
				return nil, nil, ErrCollision
			}
		}
		if err != nil {
			return nil, nil, fmt.Errorf("creating revision %s: %w", name, err)
		}
		owned = append(owned, cur)
	case !bytes.Equal(cur.Data.Raw, w.Data):
		return nil, nil, ErrCollision
	case cur.Revision < maxRev:
		// A rollback to an old template makes that revision the newest.
		upd := cur.DeepCopy()
		upd.Revision = maxRev + 1
		if cur, err = revs.Update(ctx, upd, metav1.UpdateOptions{}); err != nil {
			return nil, nil, fmt.Errorf("renumbering revision %s: %w", name, err)
		}
	}
	return cur, owned, nil
}

// BumpCollisions increments the collision count that obj's status holds at
// *count and writes the status. obj must be a copy the caller may change.
// It always returns an error: the sync has to start over with a new hash.
func BumpCollisions[T metav1.Object](ctx context.Context, obj T, kind string, count **int32,
	updateStatus func(context.Context, T, metav1.UpdateOptions) (T, error)) error {
	n := int32(1)
	if *count != nil {
		n = **count + 1
	}
	*count = &n
	if _, err := updateStatus(ctx, obj, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("bumping collision count: %w", err)
	}
	return fmt.Errorf("revision hash collision for %s %s/%s, collision count now %d", kind, obj.GetNamespace(), obj.GetName(), n)
}

// Prune deletes the oldest of unused, the revisions nothing runs any more,
// beyond limit (the owner's revisionHistoryLimit).
func Prune(ctx context.Context, client kubernetes.Interface, namespace string, unused []*appsv1.ControllerRevision, limit *int32) error {
	keep := defaultLimit
	if limit != nil {
		keep = int(*limit)
	}
	if len(unused) <= keep {
		return nil
	}
	sort.Slice(unused, func(i, j int) bool { return unused[i].Revision < unused[j].Revision })
	for _, r := range unused[:len(unused)-keep] {
		err := client.AppsV1().ControllerRevisions(namespace).Delete(ctx, r.Name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("deleting revision %s: %w", r.Name, err)
		}
	}
	return nil
}
