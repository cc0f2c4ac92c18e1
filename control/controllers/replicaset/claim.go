package replicaset

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
)

// RefManager adopts and releases objects for one controller object, as
// upstream's ControllerRefManager does: an object belongs to the controller
// whose controller ownerReference it carries; an orphan that matches the
// selector is adopted, an owned object that no longer matches is released.
type RefManager struct {
	Owner    metav1.Object
	OwnerGVK schema.GroupVersionKind
	Selector labels.Selector
	// Recheck reads the owner afresh and fails if it is gone or being
	// deleted: a stale cache must not let a dying owner adopt anything.
	// It runs at most once per claim, before the first adoption.
	Recheck func(ctx context.Context) error
	// Patch applies a strategic merge patch to a claimed object.
	Patch func(ctx context.Context, namespace, name string, patch []byte) error

	once     sync.Once
	recheckE error
}

// Claim returns the objects that belong to the owner after adopting
// matching orphans and releasing owned objects that no longer match.
func Claim[T metav1.Object](ctx context.Context, m *RefManager, objs []T) ([]T, error) {
	var claimed []T
	var errs []error
	for _, obj := range objs {
		ok, err := m.claimOne(ctx, obj)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if ok {
			claimed = append(claimed, obj)
		}
	}
	return claimed, errors.Join(errs...)
}

func (m *RefManager) claimOne(ctx context.Context, obj metav1.Object) (bool, error) {
	ref := metav1.GetControllerOfNoCopy(obj)
	match := m.Selector.Matches(labels.Set(obj.GetLabels()))
	if ref != nil {
		if ref.UID != m.Owner.GetUID() {
			return false, nil
		}
		if match {
			return true, nil
		}
		// A dying owner keeps what it has; releasing now would hand the
		// object to another controller in the middle of a cascade.
		if m.Owner.GetDeletionTimestamp() != nil {
			return false, nil
		}
		if err := m.release(ctx, obj); err != nil {
			if apierrors.IsNotFound(err) {
				return false, nil
			}
			return false, err
		}
		return false, nil
	}
	if m.Owner.GetDeletionTimestamp() != nil || !match || obj.GetDeletionTimestamp() != nil {
		return false, nil
	}
	if err := m.adopt(ctx, obj); err != nil {
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return false, err
	}
	return true, nil
}

type ownerRefPatch struct {
	Metadata struct {
		OwnerReferences []map[string]any `json:"ownerReferences"`
		UID             types.UID        `json:"uid"`
	} `json:"metadata"`
}

func (m *RefManager) adopt(ctx context.Context, obj metav1.Object) error {
	m.once.Do(func() {
		if m.Recheck != nil {
			m.recheckE = m.Recheck(ctx)
		}
	})
	if m.recheckE != nil {
		return fmt.Errorf("cannot adopt %s: %w", obj.GetName(), m.recheckE)
	}
	var p ownerRefPatch
	apiVersion, kind := m.OwnerGVK.ToAPIVersionAndKind()
	p.Metadata.OwnerReferences = []map[string]any{{
		"apiVersion": apiVersion, "kind": kind, "name": m.Owner.GetName(), "uid": m.Owner.GetUID(),
		"controller": true, "blockOwnerDeletion": true,
	}}
	// The object's UID in the patch makes it fail on a recreated object of
	// the same name instead of adopting a stranger.
	p.Metadata.UID = obj.GetUID()
	body, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("adopt patch: %w", err)
	}
	if err := m.Patch(ctx, obj.GetNamespace(), obj.GetName(), body); err != nil {
		return fmt.Errorf("adopting %s: %w", obj.GetName(), err)
	}
	return nil
}

func (m *RefManager) release(ctx context.Context, obj metav1.Object) error {
	var p ownerRefPatch
	p.Metadata.OwnerReferences = []map[string]any{{"$patch": "delete", "uid": m.Owner.GetUID()}}
	p.Metadata.UID = obj.GetUID()
	body, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("release patch: %w", err)
	}
	if err := m.Patch(ctx, obj.GetNamespace(), obj.GetName(), body); err != nil {
		return fmt.Errorf("releasing %s: %w", obj.GetName(), err)
	}
	return nil
}

// ClaimPods returns the pods in owner's namespace that owner controls,
// adopting matching orphans and releasing owned pods that stopped matching.
// get re-reads the owner from the API server (a typed client's Get) for the
// recheck before the first adoption: the cache may not yet show that the
// owner is gone or being deleted.
func ClaimPods[T metav1.Object](ctx context.Context, client kubernetes.Interface, pods corelisters.PodLister,
	owner metav1.Object, gvk schema.GroupVersionKind, selector labels.Selector,
	get func(context.Context, string, metav1.GetOptions) (T, error)) ([]*corev1.Pod, error) {
	all, err := pods.Pods(owner.GetNamespace()).List(labels.Everything())
	if err != nil {
		return nil, fmt.Errorf("listing pods: %w", err)
	}
	m := &RefManager{
		Owner: owner, OwnerGVK: gvk, Selector: selector,
		Recheck: func(ctx context.Context) error {
			fresh, err := get(ctx, owner.GetName(), metav1.GetOptions{})
			if err != nil {
				return err
			}
			if fresh.GetUID() != owner.GetUID() || fresh.GetDeletionTimestamp() != nil {
				return fmt.Errorf("%s %s/%s is gone or being deleted",
					strings.ToLower(gvk.Kind), owner.GetNamespace(), owner.GetName())
			}
			return nil
		},
		Patch: patchPod(client),
	}
	claimed, err := Claim(ctx, m, all)
	if err != nil {
		return nil, fmt.Errorf("claiming pods: %w", err)
	}
	return claimed, nil
}

func patchPod(client kubernetes.Interface) func(ctx context.Context, namespace, name string, patch []byte) error {
	return func(ctx context.Context, namespace, name string, patch []byte) error {
		_, err := client.CoreV1().Pods(namespace).Patch(ctx, name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
		return err
	}
}
