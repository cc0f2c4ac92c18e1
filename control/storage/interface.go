package storage

import (
	"context"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
)

// Interface is one resource's view of etcd, for example every pod under
// /registry/pods/. Keys are full etcd keys: Prefix + "<namespace>/<name>" for
// namespaced resources, Prefix + "<name>" for cluster-scoped ones.
//
// Errors are Kubernetes API errors (k8s.io/apimachinery/pkg/api/errors) built
// with the resource's GroupResource and the object's name: NotFound,
// AlreadyExists, Conflict, Expired/Gone (410) and InternalError for etcd faults.
type Interface interface {
	// Create stores obj under key if the key does not exist yet. The returned
	// object carries resourceVersion = the etcd ModRevision of the write.
	Create(ctx context.Context, key string, obj runtime.Object) (runtime.Object, error)

	// Get returns the current object at key.
	Get(ctx context.Context, key string) (runtime.Object, error)

	// List returns the objects under prefix (a namespace prefix or the whole
	// resource prefix) that match opts.Predicate, sorted by key.
	List(ctx context.Context, prefix string, opts ListOptions) (*ListResult, error)

	// GuaranteedUpdate reads the object at key, calls tryUpdate with a copy of
	// it, and writes the result with a compare-and-swap on its ModRevision,
	// retrying on a lost race. tryUpdate's error aborts the update and is
	// returned as is. When tryUpdate returns an object equal to the existing one
	// no write happens and the existing object is returned. A result whose
	// resourceVersion is set and differs from the existing object's gives
	// Conflict (leave it empty or unchanged for an unconditional update).
	GuaranteedUpdate(ctx context.Context, key string, tryUpdate UpdateFunc) (runtime.Object, error)

	// Delete removes the object at key. precondition, when set, is called with
	// the current object inside the compare-and-swap loop and can refuse.
	Delete(ctx context.Context, key string, precondition func(existing runtime.Object) error) (runtime.Object, error)

	// Watch streams changes under prefix (a single key watches one object).
	// An event's object is shared by every watcher of that change, so that
	// fan-out costs no copy per watcher: it is read-only. (Objects from Get
	// and List are the caller's own.)
	Watch(ctx context.Context, prefix string, opts WatchOptions) (watch.Interface, error)
}

// UpdateFunc turns the existing object into the one to store.
type UpdateFunc func(existing runtime.Object) (runtime.Object, error)

// AttrFunc returns the labels and the selectable fields of an object, for
// label and field selectors.
type AttrFunc func(obj runtime.Object) (labels.Set, fields.Set, error)

// Predicate selects objects by label and field.
type Predicate struct {
	Label labels.Selector // nil means everything
	Field fields.Selector // nil means everything
}

// ListOptions follow metav1.ListOptions semantics.
type ListOptions struct {
	// ResourceVersion: "" is a consistent (quorum) read; "0" is any cached
	// state; "N" with ResourceVersionMatch NotOlderThan (default) or Exact.
	ResourceVersion      string
	ResourceVersionMatch metav1.ResourceVersionMatch
	Limit                int64
	Continue             string
	Predicate            Predicate
}

// ListResult is one page of a list.
type ListResult struct {
	Items              []runtime.Object
	ResourceVersion    int64
	Continue           string
	RemainingItemCount *int64
}

// WatchOptions follow metav1.ListOptions watch semantics.
type WatchOptions struct {
	// ResourceVersion "" or "0": send the current state as ADDED events first
	// (for "" a consistent state), then changes. "N": changes after N; an N that
	// is no longer available gives a 410 Expired error event.
	ResourceVersion string
	Predicate       Predicate
	// SendInitialEvents implements WatchList: the current state as ADDED, then
	// a BOOKMARK annotated metav1.InitialEventsAnnotationKey="true".
	SendInitialEvents *bool
	AllowBookmarks    bool
}

// ResourceConfig describes one resource to the storage layer.
type ResourceConfig struct {
	GroupResource schema.GroupResource
	// Prefix is "/registry/<resource>/", with the trailing slash.
	Prefix      string
	NewFunc     func() runtime.Object
	NewListFunc func() runtime.Object
	AttrFunc    AttrFunc
}
