package registry

import (
	"context"
	"net/http"
	"net/url"
	"reflect"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Strategy is everything that makes one resource different from another.
// Function fields may be nil, which means "nothing to do".
type Strategy struct {
	// Kind is the served group, version and kind, e.g. apps/v1 Deployment.
	Kind       schema.GroupVersionKind
	Resource   string // plural, lower case: "deployments"
	Singular   string // "deployment"
	ShortNames []string
	Categories []string
	Namespaced bool

	New     func() runtime.Object
	NewList func() runtime.Object

	// Generation makes creates start metadata.generation at 1 and updates
	// that change .spec increment it.
	Generation bool
	// HasStatus serves a /status subresource; the main resource then ignores
	// changes to .status and /status ignores everything else.
	HasStatus bool
	// Scale serves /scale (autoscaling/v1 Scale) through these accessors.
	Scale *ScaleAccessors

	// PrepareForCreate resets what a client may not set on create (typically
	// status). PrepareForUpdate does the same on update, with the old object.
	PrepareForCreate func(obj runtime.Object)
	PrepareForUpdate func(obj, old runtime.Object)
	Default          func(obj runtime.Object)
	Validate         func(obj runtime.Object) field.ErrorList
	ValidateUpdate   func(obj, old runtime.Object) field.ErrorList

	// SelectableFields adds the per-resource field selector labels (for pods
	// spec.nodeName and status.phase) to metadata.name and metadata.namespace.
	SelectableFields func(obj runtime.Object) fields.Set
	// FieldLabels lists the extra labels SelectableFields provides, so that an
	// unsupported one is refused with 400 before any work.
	FieldLabels []string

	// GracePeriod, when set, makes deletion graceful: it returns the grace
	// period to use and whether deletion should wait for it (pods bound to a
	// node wait for their agent; others go at once).
	GracePeriod func(obj runtime.Object, opts *metav1.DeleteOptions) (seconds int64, graceful bool)
	// BeforeDelete runs on delete before anything else and may turn the delete
	// into an update (a namespace becomes Terminating). It returns the updated
	// object and true when the delete must stop there.
	BeforeDelete func(obj runtime.Object) (runtime.Object, bool)

	// Allocate reserves what an object needs outside its own key (a
	// Service's cluster IP and node ports) just before it is written; undo
	// gives it back when the write does not happen.
	Allocate func(ctx context.Context, obj, old runtime.Object) (undo func(), err error)
	// Release gives back what old held and obj no longer does; obj is nil
	// once old is deleted.
	Release func(ctx context.Context, obj, old runtime.Object)

	// Finalized reports whether an object marked for deletion may go now;
	// nil means "no metadata.finalizers left". Namespaces also wait for
	// their spec.finalizers.
	Finalized func(obj runtime.Object) bool

	// Subresources served besides status and scale (pods/binding, ...).
	Subresources []Subresource
}

// Subresource is an extra endpoint under an object, such as pods/binding.
type Subresource struct {
	Name  string
	Kind  schema.GroupVersionKind
	Verbs []string
	New   func() runtime.Object
	// Create (POST) or Update (PUT) turns the body into a change of the
	// parent object, done inside the store's compare-and-swap.
	Create func(parent runtime.Object, body runtime.Object) (runtime.Object, error)
	Update func(parent runtime.Object, body runtime.Object) (runtime.Object, error)
	// Result is what the POST answers with; nil answers a Success Status.
	Result func(parent runtime.Object, body runtime.Object) runtime.Object
	// Connect serves a connecter subresource such as pods/log or
	// pods/exec, upstream's rest.Connecter: for a GET or POST (as Verbs
	// allow) it returns the handler that serves the request, usually a
	// proxy to the node. Errors it returns, and those the handler gives
	// to fail, are answered as Status objects.
	Connect func(ctx context.Context, parent runtime.Object, query url.Values, fail func(http.ResponseWriter, error)) (http.Handler, error)
}

// ScaleAccessors read and write the replica fields behind /scale.
type ScaleAccessors struct {
	SpecReplicas   func(obj runtime.Object) int32
	SetReplicas    func(obj runtime.Object, replicas int32)
	StatusReplicas func(obj runtime.Object) int32
	Selector       func(obj runtime.Object) string
}

// GroupResource names the resource in errors.
func (s *Strategy) GroupResource() schema.GroupResource {
	return schema.GroupResource{Group: s.Kind.Group, Resource: s.Resource}
}

// structField returns the named field of a pointer to a struct, such as
// "Spec" or "Status" of any k8s.io/api object, or an invalid Value.
func structField(obj runtime.Object, name string) reflect.Value {
	v := reflect.ValueOf(obj)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return reflect.Value{}
	}
	return v.Elem().FieldByName(name)
}

// copyField sets dst.name = src.name when both objects have that field. The
// generic spec/status separation is done this way for every kind.
func copyField(dst, src runtime.Object, name string) {
	d, s := structField(dst, name), structField(src, name)
	if d.IsValid() && s.IsValid() && d.CanSet() {
		d.Set(s)
	}
}
