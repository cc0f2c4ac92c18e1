package apiserver

import (
	"fmt"
	"net/http"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/managedfields"
	"k8s.io/apimachinery/pkg/util/validation/field"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/kube-openapi/pkg/validation/spec"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"

	"github.com/wasmkube/wasmkube/control/registry"
)

// fieldManagers track metadata.managedFields on every write and merge
// server-side apply patches, using apimachinery's structured-merge-diff
// machinery over the schemas generated from the Go types. There is one per
// kind and subresource ("" or "status"), built at start and read-only after.
type fieldManagers map[fieldManagerKey]*managedfields.FieldManager

type fieldManagerKey struct {
	kind        schema.GroupVersionKind
	subresource string
}

type defaulterFunc func(runtime.Object)

func (f defaulterFunc) Default(obj runtime.Object) {
	if f != nil {
		f(obj)
	}
}

func newFieldManagers(schemas map[string]*spec.Schema, stores []*registry.Store) (fieldManagers, error) {
	typeConverter, err := managedfields.NewTypeConverter(schemas, false)
	if err != nil {
		return nil, fmt.Errorf("apiserver: building the apply type converter: %w", err)
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, fmt.Errorf("apiserver: building the apply scheme: %w", err)
	}
	managers := fieldManagers{}
	for _, st := range stores {
		s := st.Strategy
		subresources := []string{""}
		if s.HasStatus {
			subresources = append(subresources, "status")
		}
		for _, sub := range subresources {
			fm, err := managedfields.NewDefaultFieldManager(typeConverter, scheme, defaulterFunc(s.Default), scheme,
				s.Kind, s.Kind.GroupVersion(), sub, resetFields(s, sub))
			if err != nil {
				return nil, fmt.Errorf("apiserver: field manager for %s %q: %w", s.Kind, sub, err)
			}
			managers[fieldManagerKey{s.Kind, sub}] = fm
		}
	}
	return managers, nil
}

// resetFields are the fields a write through this endpoint cannot own:
// status for the main resource, everything but status for /status — the
// same split the registry enforces on the values.
func resetFields(s *registry.Strategy, subresource string) map[fieldpath.APIVersion]fieldpath.Filter {
	if !s.HasStatus {
		return nil
	}
	var set *fieldpath.Set
	if subresource == "status" {
		set = fieldpath.NewSet(fieldpath.MakePathOrDie("spec"))
	} else {
		set = fieldpath.NewSet(fieldpath.MakePathOrDie("status"))
	}
	return map[fieldpath.APIVersion]fieldpath.Filter{
		fieldpath.APIVersion(s.Kind.GroupVersion().String()): fieldpath.NewExcludeSetFilter(set),
	}
}

// track records manager's ownership of what changed between live and obj.
// Subresources other than status keep their parent's managed fields as is.
func (h *request) track(live, obj runtime.Object, manager string) runtime.Object {
	fm := h.fieldManagers[fieldManagerKey{h.store.Strategy.Kind, h.info.Subresource}]
	if fm == nil {
		return obj
	}
	return fm.UpdateNoErrors(live, obj, manager)
}

// newLive is the "live" object of a create: an empty object of the kind.
func (h *request) newLive() runtime.Object {
	obj := h.store.Strategy.New()
	obj.GetObjectKind().SetGroupVersionKind(h.store.Strategy.Kind)
	return obj
}

// maxManagerLength is upstream's limit on a fieldManager name.
const maxManagerLength = 128

// managerName is the fieldManager query parameter or, as upstream, the
// user agent's program name.
func managerName(r *http.Request, fieldManager string) (string, error) {
	if fieldManager == "" {
		ua := r.UserAgent()
		if i := strings.Index(ua, "/"); i >= 0 {
			ua = ua[:i]
		}
		fieldManager = ua
		if len(fieldManager) > maxManagerLength {
			fieldManager = fieldManager[:maxManagerLength]
		}
		return fieldManager, nil
	}
	if len(fieldManager) > maxManagerLength {
		return "", apierrors.NewInvalid(schema.GroupKind{}, "", field.ErrorList{
			field.TooLong(field.NewPath("fieldManager"), "", maxManagerLength)})
	}
	for _, c := range fieldManager {
		if c < ' ' || c > '~' {
			return "", apierrors.NewInvalid(schema.GroupKind{}, "", field.ErrorList{
				field.Invalid(field.NewPath("fieldManager"), fieldManager, "must only contain printable characters")})
		}
	}
	return fieldManager, nil
}
