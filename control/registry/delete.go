package registry

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Delete removes an object, honouring preconditions, graceful deletion,
// finalizers and the propagation policy. gone reports whether the object no
// longer exists (false: it is marked for deletion and waits for someone).
func (s *Store) Delete(ctx context.Context, namespace, name string, opts *metav1.DeleteOptions) (obj runtime.Object, gone bool, err error) {
	key := s.key(namespace, name)
	dry := isDryRun(opts.DryRun)
	var deleteNow bool
	marked, err := s.storage.GuaranteedUpdate(ctx, key, func(existing runtime.Object) (runtime.Object, error) {
		if err := s.checkPreconditions(existing, name, opts.Preconditions); err != nil {
			return nil, err
		}
		obj := existing.DeepCopyObject()
		var stop bool
		deleteNow, stop = s.markForDeletion(obj, opts)
		if dry {
			return nil, dryRunResult{obj}
		}
		if deleteNow {
			return existing, nil // removed below, under the same preconditions
		}
		_ = stop // an unchanged mark is not written again: storage skips equal objects
		return obj, nil
	})
	var dryRes dryRunResult
	if errors.As(err, &dryRes) {
		return dryRes.obj, deleteNow, nil
	}
	if err != nil {
		return nil, false, err
	}
	if !deleteNow {
		s.setTypeMeta(marked)
		return marked, false, nil
	}
	rv := mustAccessor(marked).GetResourceVersion()
	out, err := s.storage.Delete(ctx, key, func(existing runtime.Object) error {
		if err := s.checkPreconditions(existing, name, opts.Preconditions); err != nil {
			return err
		}
		if mustAccessor(existing).GetResourceVersion() != rv {
			return apierrors.NewConflict(s.Strategy.GroupResource(), name, errors.New("the object has been modified; please apply your changes to the latest version and try again"))
		}
		return nil
	})
	if err != nil {
		return nil, false, err
	}
	s.setTypeMeta(out)
	s.released(ctx, nil, out)
	return out, true, nil
}

// markForDeletion decides what deleting obj means and records it on obj:
// deleteNow says to remove it from storage; stop says the delete ends as an
// update (graceful wait, finalizers, a namespace turning Terminating).
func (s *Store) markForDeletion(obj runtime.Object, opts *metav1.DeleteOptions) (deleteNow, stop bool) {
	m := mustAccessor(obj)
	if s.Strategy.BeforeDelete != nil {
		if _, stop := s.Strategy.BeforeDelete(obj); stop {
			s.setDeletionTimestamp(m, 0)
			return false, true
		}
	}
	switch propagationPolicy(opts) {
	case metav1.DeletePropagationForeground:
		addFinalizer(m, metav1.FinalizerDeleteDependents)
	case metav1.DeletePropagationOrphan:
		addFinalizer(m, metav1.FinalizerOrphanDependents)
	}
	if s.Strategy.GracePeriod != nil {
		if grace, graceful := s.Strategy.GracePeriod(obj, opts); graceful && grace > 0 {
			s.setDeletionTimestamp(m, grace)
			return false, true
		}
	}
	if len(m.GetFinalizers()) > 0 {
		s.setDeletionTimestamp(m, 0)
		return false, true
	}
	return true, false
}

// setDeletionTimestamp marks the object as deleting; a later delete may only
// shorten an existing grace period, never extend it.
func (s *Store) setDeletionTimestamp(m metav1.Object, grace int64) {
	if cur := m.GetDeletionGracePeriodSeconds(); m.GetDeletionTimestamp() != nil && cur != nil && *cur <= grace {
		return
	}
	ts := metav1.NewTime(s.now().Add(time.Duration(grace) * time.Second).Truncate(time.Second))
	m.SetDeletionTimestamp(&ts)
	m.SetDeletionGracePeriodSeconds(&grace)
}

func propagationPolicy(opts *metav1.DeleteOptions) metav1.DeletionPropagation {
	if opts.PropagationPolicy != nil {
		return *opts.PropagationPolicy
	}
	if opts.OrphanDependents != nil && *opts.OrphanDependents {
		return metav1.DeletePropagationOrphan
	}
	return metav1.DeletePropagationBackground
}

func addFinalizer(m metav1.Object, f string) {
	if !slices.Contains(m.GetFinalizers(), f) {
		m.SetFinalizers(append(m.GetFinalizers(), f))
	}
}

func (s *Store) checkPreconditions(existing runtime.Object, name string, p *metav1.Preconditions) error {
	if p == nil {
		return nil
	}
	m := mustAccessor(existing)
	if p.UID != nil && *p.UID != m.GetUID() {
		return apierrors.NewConflict(s.Strategy.GroupResource(), name,
			fmt.Errorf("Precondition failed: UID in precondition: %v, UID in object meta: %v", *p.UID, m.GetUID()))
	}
	if p.ResourceVersion != nil && *p.ResourceVersion != m.GetResourceVersion() {
		return apierrors.NewConflict(s.Strategy.GroupResource(), name,
			fmt.Errorf("Precondition failed: ResourceVersion in precondition: %v, ResourceVersion in object meta: %v", *p.ResourceVersion, m.GetResourceVersion()))
	}
	return nil
}

// DeleteCollection deletes every object the list options select and returns
// the typed list of what it deleted or marked.
func (s *Store) DeleteCollection(ctx context.Context, namespace string, listOpts *metav1.ListOptions, opts *metav1.DeleteOptions) (runtime.Object, error) {
	list, err := s.List(ctx, namespace, listOpts)
	if err != nil {
		return nil, err
	}
	items, err := meta.ExtractList(list)
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	done := make([]runtime.Object, 0, len(items))
	for _, item := range items {
		m := mustAccessor(item)
		out, _, err := s.Delete(ctx, m.GetNamespace(), m.GetName(), opts)
		if apierrors.IsNotFound(err) {
			continue // deleted by someone else meanwhile: the goal is reached
		}
		if err != nil {
			return nil, err
		}
		done = append(done, out)
	}
	if err := meta.SetList(list, done); err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	return list, nil
}

func forbiddenNewFinalizers() *field.Error {
	return field.Forbidden(field.NewPath("metadata", "finalizers"), "no new finalizers can be added if the object is being deleted")
}

func mustAccessor(obj runtime.Object) metav1.Object {
	m, err := meta.Accessor(obj)
	if err != nil {
		panic(fmt.Sprintf("registry: %T has no object metadata: %v", obj, err))
	}
	return m
}
