package registry

import (
	"context"
	"errors"
	"fmt"

	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// MutateFunc turns the current object into the desired one: a PUT returns
// its body, a PATCH applies the patch to the current object.
type MutateFunc func(existing runtime.Object) (runtime.Object, error)

// dryRunResult aborts the storage update loop without writing, carrying the
// object the write would have stored.
type dryRunResult struct{ obj runtime.Object }

func (dryRunResult) Error() string { return "dry run" }

// Update changes an existing object. subresource is "" for the object itself
// or "status". The returned object is what was stored.
func (s *Store) Update(ctx context.Context, namespace, name, subresource string, mutate MutateFunc, dryRun []string) (runtime.Object, error) {
	if subresource != "" && (subresource != "status" || !s.Strategy.HasStatus) {
		return nil, apierrors.NewNotFound(s.Strategy.GroupResource(), name)
	}
	return s.update(ctx, namespace, name, subresource, mutate, dryRun)
}

// update is Update for any subresource. A custom subresource (pods/binding)
// changes fields that plain updates may not, so only the object's own
// validation applies to it, not the update rules.
func (s *Store) update(ctx context.Context, namespace, name, subresource string, mutate MutateFunc, dryRun []string) (runtime.Object, error) {
	// A lost compare-and-swap runs the update again on the newer object, so
	// what the previous attempt allocated is given back first.
	undo, old := func() {}, runtime.Object(nil)
	out, err := s.storage.GuaranteedUpdate(ctx, s.key(namespace, name), func(existing runtime.Object) (runtime.Object, error) {
		undo()
		undo = func() {}
		obj, err := mutate(existing.DeepCopyObject())
		if err != nil {
			return nil, err
		}
		if err := s.prepareUpdate(obj, existing, name, subresource); err != nil {
			return nil, err
		}
		if isDryRun(dryRun) {
			return nil, dryRunResult{obj}
		}
		if undo, err = s.allocate(ctx, obj, existing); err != nil {
			undo = func() {}
			return nil, err
		}
		old = existing
		return obj, nil
	})
	var dry dryRunResult
	if errors.As(err, &dry) {
		return dry.obj, nil
	}
	if err != nil {
		undo()
		return nil, err
	}
	s.setTypeMeta(out)
	s.released(ctx, out, old)
	return s.finishDeletionIfDone(ctx, namespace, out)
}

// prepareUpdate enforces what every update must respect, then the resource's
// own rules, on obj in place.
func (s *Store) prepareUpdate(obj, old runtime.Object, name, subresource string) error {
	m, err := meta.Accessor(obj)
	if err != nil {
		return apierrors.NewBadRequest(err.Error())
	}
	oldMeta, _ := meta.Accessor(old)
	if m.GetName() == "" {
		m.SetName(name)
	}
	if m.GetName() != name {
		return apierrors.NewBadRequest(fmt.Sprintf("the name of the object (%s) does not match the name on the URL (%s)", m.GetName(), name))
	}
	if s.Strategy.Namespaced && m.GetNamespace() == "" {
		m.SetNamespace(oldMeta.GetNamespace())
	}
	if m.GetNamespace() != oldMeta.GetNamespace() {
		return apierrors.NewBadRequest("the namespace of the provided object does not match the namespace sent on the request")
	}
	// An empty resourceVersion is an unconditional update, as upstream allows
	// for every built-in resource.
	if rv := m.GetResourceVersion(); rv != "" && rv != oldMeta.GetResourceVersion() {
		return apierrors.NewConflict(s.Strategy.GroupResource(), name,
			errors.New("the object has been modified; please apply your changes to the latest version and try again"))
	}
	s.setTypeMeta(obj)
	m.SetResourceVersion(oldMeta.GetResourceVersion())
	m.SetUID(oldMeta.GetUID())
	m.SetCreationTimestamp(oldMeta.GetCreationTimestamp())
	m.SetDeletionTimestamp(oldMeta.GetDeletionTimestamp())
	m.SetDeletionGracePeriodSeconds(oldMeta.GetDeletionGracePeriodSeconds())
	m.SetGeneration(oldMeta.GetGeneration())
	m.SetSelfLink("")

	if subresource == "status" {
		resetForStatus(obj, old, m, oldMeta)
	} else {
		// A custom subresource (pods/binding) may record status itself.
		if s.Strategy.HasStatus && subresource == "" {
			copyField(obj, old, "Status")
		}
		if s.Strategy.PrepareForUpdate != nil {
			s.Strategy.PrepareForUpdate(obj, old)
		}
		if s.Strategy.Default != nil {
			s.Strategy.Default(obj)
		}
		if s.Strategy.Generation && !apiequality.Semantic.DeepEqual(structField(obj, "Spec").Interface(), structField(old, "Spec").Interface()) {
			m.SetGeneration(oldMeta.GetGeneration() + 1)
		}
	}
	if oldMeta.GetDeletionTimestamp() != nil && len(m.GetFinalizers()) > len(oldMeta.GetFinalizers()) {
		return s.invalid(name, forbiddenNewFinalizers())
	}
	against := old
	if subresource != "" && subresource != "status" {
		against = nil
	}
	if errs := s.validate(obj, against); len(errs) > 0 {
		return apierrors.NewInvalid(s.Strategy.Kind.GroupKind(), name, errs)
	}
	return nil
}

// resetForStatus keeps everything but .status from the stored object, as
// upstream's status strategies do (metav1.ResetObjectMetaForStatus).
func resetForStatus(obj, old runtime.Object, m, oldMeta metav1.Object) {
	copyField(obj, old, "Spec")
	m.SetLabels(oldMeta.GetLabels())
	m.SetAnnotations(oldMeta.GetAnnotations())
	m.SetFinalizers(oldMeta.GetFinalizers())
	m.SetOwnerReferences(oldMeta.GetOwnerReferences())
}

// finishDeletionIfDone deletes an object whose deletion was waiting only for
// finalizers that an update has just removed.
func (s *Store) finishDeletionIfDone(ctx context.Context, namespace string, obj runtime.Object) (runtime.Object, error) {
	m, _ := meta.Accessor(obj)
	if m.GetDeletionTimestamp() == nil || len(m.GetFinalizers()) > 0 {
		return obj, nil
	}
	if s.Strategy.Finalized != nil && !s.Strategy.Finalized(obj) {
		return obj, nil
	}
	if g := m.GetDeletionGracePeriodSeconds(); g != nil && *g > 0 {
		return obj, nil // still in its grace period: its agent finishes it
	}
	rv := m.GetResourceVersion()
	_, err := s.storage.Delete(ctx, s.key(namespace, m.GetName()), func(existing runtime.Object) error {
		em, _ := meta.Accessor(existing)
		if em.GetResourceVersion() != rv {
			return apierrors.NewConflict(s.Strategy.GroupResource(), m.GetName(), errors.New("object changed while finishing deletion"))
		}
		return nil
	})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return nil, err
	}
	if err == nil {
		s.released(ctx, nil, obj)
	}
	return obj, nil
}
