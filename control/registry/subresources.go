package registry

import (
	"context"
	"fmt"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
)

// ScaleKind is the kind served by every /scale subresource.
var scaleGVK = autoscalingv1.SchemeGroupVersion.WithKind("Scale")

// GetScale returns the autoscaling/v1 Scale view of an object.
func (s *Store) GetScale(ctx context.Context, namespace, name string) (*autoscalingv1.Scale, error) {
	if s.Strategy.Scale == nil {
		return nil, apierrors.NewNotFound(s.Strategy.GroupResource(), name)
	}
	obj, err := s.Get(ctx, namespace, name)
	if err != nil {
		return nil, err
	}
	return s.scaleOf(obj), nil
}

func (s *Store) scaleOf(obj runtime.Object) *autoscalingv1.Scale {
	m := mustAccessor(obj)
	sc := &autoscalingv1.Scale{}
	sc.APIVersion, sc.Kind = scaleGVK.ToAPIVersionAndKind()
	sc.Name, sc.Namespace, sc.UID = m.GetName(), m.GetNamespace(), m.GetUID()
	sc.ResourceVersion, sc.CreationTimestamp = m.GetResourceVersion(), m.GetCreationTimestamp()
	sc.Spec.Replicas = s.Strategy.Scale.SpecReplicas(obj)
	sc.Status.Replicas = s.Strategy.Scale.StatusReplicas(obj)
	sc.Status.Selector = s.Strategy.Scale.Selector(obj)
	return sc
}

// UpdateScale changes spec.replicas through the Scale view. mutate receives
// the current Scale and returns the desired one (a PUT body, or the current
// Scale with a patch applied).
func (s *Store) UpdateScale(ctx context.Context, namespace, name string, mutate func(*autoscalingv1.Scale) (*autoscalingv1.Scale, error), dryRun []string) (*autoscalingv1.Scale, error) {
	if s.Strategy.Scale == nil {
		return nil, apierrors.NewNotFound(s.Strategy.GroupResource(), name)
	}
	out, err := s.Update(ctx, namespace, name, "", func(existing runtime.Object) (runtime.Object, error) {
		want, err := mutate(s.scaleOf(existing))
		if err != nil {
			return nil, err
		}
		if want.Name != "" && want.Name != name {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("the name of the object (%s) does not match the name on the URL (%s)", want.Name, name))
		}
		if want.Spec.Replicas < 0 {
			return nil, apierrors.NewInvalid(scaleGVK.GroupKind(), name, []*fieldError{fieldInvalidReplicas(want.Spec.Replicas)})
		}
		s.Strategy.Scale.SetReplicas(existing, want.Spec.Replicas)
		// Carry the Scale's resourceVersion so a stale one conflicts.
		mustAccessor(existing).SetResourceVersion(want.ResourceVersion)
		return existing, nil
	}, dryRun)
	if err != nil {
		return nil, err
	}
	return s.scaleOf(out), nil
}

// CreateSubresource serves a POST to a custom subresource such as
// pods/binding: the change to the parent happens in one compare-and-swap.
func (s *Store) CreateSubresource(ctx context.Context, namespace, name, subresource string, body runtime.Object, dryRun []string) (runtime.Object, error) {
	sr := s.Subresource(subresource)
	if sr == nil || sr.Create == nil {
		return nil, apierrors.NewNotFound(s.Strategy.GroupResource(), name)
	}
	return s.changeThroughSubresource(ctx, namespace, name, sr, sr.Create, body, dryRun)
}

// UpdateSubresource serves a PUT to a custom subresource such as
// namespaces/finalize.
func (s *Store) UpdateSubresource(ctx context.Context, namespace, name, subresource string, body runtime.Object, dryRun []string) (runtime.Object, error) {
	sr := s.Subresource(subresource)
	if sr == nil || sr.Update == nil {
		return nil, apierrors.NewNotFound(s.Strategy.GroupResource(), name)
	}
	return s.changeThroughSubresource(ctx, namespace, name, sr, sr.Update, body, dryRun)
}

func (s *Store) changeThroughSubresource(ctx context.Context, namespace, name string, sr *Subresource, change func(parent, body runtime.Object) (runtime.Object, error), body runtime.Object, dryRun []string) (runtime.Object, error) {
	out, err := s.update(ctx, namespace, name, sr.Name, func(existing runtime.Object) (runtime.Object, error) {
		return change(existing, body)
	}, dryRun)
	if err != nil {
		return nil, err
	}
	if sr.Result != nil {
		return sr.Result(out, body), nil
	}
	return nil, nil
}

// Subresource returns the named custom subresource, or nil.
func (s *Store) Subresource(name string) *Subresource {
	for i := range s.Strategy.Subresources {
		if s.Strategy.Subresources[i].Name == name {
			return &s.Strategy.Subresources[i]
		}
	}
	return nil
}
