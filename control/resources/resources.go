package resources

import (
	"reflect"

	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/wasmkube/wasmkube/control/defaults"
	"github.com/wasmkube/wasmkube/control/registry"
	"github.com/wasmkube/wasmkube/control/validation"
)

// Deps are what some strategies need from outside the registry.
type Deps struct {
	Services ServiceAllocators
	// StorageClasses, when set, gives new claims without a class the
	// default StorageClass.
	StorageClasses StorageClassLister
	// Kubelet reaches node agents for pods/log, exec, attach and
	// portforward; nil answers those with 503.
	Kubelet *Kubelet
}

// All returns a fresh strategy for every served resource, core group first,
// in the order discovery lists them.
func All(deps Deps) []*registry.Strategy {
	var all []*registry.Strategy
	all = append(all, core(deps)...)
	all = append(all, apps()...)
	all = append(all, others()...)
	return all
}

// option adjusts a strategy while the table is built.
type option func(*registry.Strategy)

func define(gv schema.GroupVersion, kind, resource string, namespaced bool, newObj, newList func() runtime.Object, opts ...option) *registry.Strategy {
	s := &registry.Strategy{
		Kind:           gv.WithKind(kind),
		Resource:       resource,
		Singular:       lower(kind),
		Namespaced:     namespaced,
		New:            newObj,
		NewList:        newList,
		Default:        defaults.Apply,
		Validate:       validation.Validate,
		ValidateUpdate: validation.ValidateUpdate,
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

func short(names ...string) option { return func(s *registry.Strategy) { s.ShortNames = names } }

// inAll puts a resource in the "all" category, as upstream does for the
// workload kinds and services.
func inAll(s *registry.Strategy) { s.Categories = []string{"all"} }

// withStatus serves /status and separates spec from status.
func withStatus(s *registry.Strategy) { s.HasStatus = true }

// withGeneration tracks spec changes in metadata.generation.
func withGeneration(s *registry.Strategy) { s.Generation = true }

// resetStatus clears the status a client sent on create: the system writes it.
func resetStatus(s *registry.Strategy) {
	prev := s.PrepareForCreate
	s.PrepareForCreate = func(obj runtime.Object) {
		clearStatus(obj)
		if prev != nil {
			prev(obj)
		}
	}
}

func fieldLabels(f func(runtime.Object) fields.Set, labels ...string) option {
	return func(s *registry.Strategy) {
		s.FieldLabels = labels
		s.SelectableFields = f
	}
}

// clearStatus zeroes the .status of any k8s.io/api object.
func clearStatus(obj runtime.Object) {
	v := reflect.ValueOf(obj).Elem().FieldByName("Status")
	if v.IsValid() && v.CanSet() {
		v.Set(reflect.Zero(v.Type()))
	}
}
