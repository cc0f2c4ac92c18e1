package registry

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/wasmkube/wasmkube/control/storage"
)

// NamespaceGetter looks up a namespace, so that objects are only created in
// namespaces that exist and are not terminating (upstream's
// NamespaceLifecycle admission).
type NamespaceGetter func(ctx context.Context, name string) (*corev1.Namespace, error)

// Store serves one resource.
type Store struct {
	Strategy *Strategy
	storage  storage.Interface
	prefix   string
	now      func() time.Time
	nsGetter NamespaceGetter
}

// Option configures a Store.
type Option func(*Store)

// WithClock replaces time.Now, for tests.
func WithClock(now func() time.Time) Option { return func(s *Store) { s.now = now } }

// WithNamespaceGetter enables the namespace existence check on create.
func WithNamespaceGetter(get NamespaceGetter) Option {
	return func(s *Store) { s.nsGetter = get }
}

// NewStore serves strategy's resource from backend.
func NewStore(strategy *Strategy, backend interface {
	Resource(storage.ResourceConfig) storage.Interface
}, opts ...Option) *Store {
	prefix := "/registry/" + strategy.Resource + "/"
	if strategy.Kind.Group != "" && clashesWithCore(strategy.Resource) {
		// events.k8s.io/v1 events are a second type named "events"; keep its
		// objects apart from core/v1 events.
		prefix = "/registry/" + strategy.Resource + "." + strategy.Kind.Group + "/"
	}
	s := &Store{Strategy: strategy, prefix: prefix, now: time.Now}
	for _, o := range opts {
		o(s)
	}
	s.storage = backend.Resource(storage.ResourceConfig{
		GroupResource: strategy.GroupResource(),
		Prefix:        prefix,
		NewFunc:       strategy.New,
		NewListFunc:   strategy.NewList,
		AttrFunc:      s.attrs,
	})
	return s
}

func clashesWithCore(resource string) bool { return resource == "events" }

func (s *Store) key(namespace, name string) string {
	if s.Strategy.Namespaced {
		return s.prefix + namespace + "/" + name
	}
	return s.prefix + name
}

func (s *Store) listPrefix(namespace string) string {
	if s.Strategy.Namespaced && namespace != "" {
		return s.prefix + namespace + "/"
	}
	return s.prefix
}

func (s *Store) attrs(obj runtime.Object) (labels.Set, fields.Set, error) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, nil, err
	}
	f := fields.Set{"metadata.name": m.GetName()}
	if s.Strategy.Namespaced {
		f["metadata.namespace"] = m.GetNamespace()
	}
	if s.Strategy.SelectableFields != nil {
		for k, v := range s.Strategy.SelectableFields(obj) {
			f[k] = v
		}
	}
	return labels.Set(m.GetLabels()), f, nil
}

// predicate turns list options into a storage predicate, refusing field
// labels the resource does not support with upstream's 400.
func (s *Store) predicate(opts *metav1.ListOptions) (storage.Predicate, error) {
	var p storage.Predicate
	if opts.LabelSelector != "" {
		sel, err := labels.Parse(opts.LabelSelector)
		if err != nil {
			return p, apierrors.NewBadRequest(fmt.Sprintf("unable to parse requirement: %v", err))
		}
		p.Label = sel
	}
	if opts.FieldSelector != "" {
		sel, err := fields.ParseSelector(opts.FieldSelector)
		if err != nil {
			return p, apierrors.NewBadRequest(fmt.Sprintf("invalid field selector: %v", err))
		}
		for _, r := range sel.Requirements() {
			if !s.supportsField(r.Field) {
				return p, apierrors.NewBadRequest(fmt.Sprintf("field label not supported: %s", r.Field))
			}
		}
		p.Field = sel
	}
	return p, nil
}

func (s *Store) supportsField(label string) bool {
	if label == "metadata.name" || (label == "metadata.namespace" && s.Strategy.Namespaced) {
		return true
	}
	for _, l := range s.Strategy.FieldLabels {
		if l == label {
			return true
		}
	}
	return false
}

// Get returns one object.
func (s *Store) Get(ctx context.Context, namespace, name string) (runtime.Object, error) {
	obj, err := s.storage.Get(ctx, s.key(namespace, name))
	if err != nil {
		return nil, err
	}
	s.setTypeMeta(obj)
	return obj, nil
}

// GetCached returns one object from the watch cache, which may lag the
// latest write by a moment; a miss is confirmed against etcd. It serves
// lookups that tolerate a stale answer, such as the namespace check on
// every create, as upstream's admission reads its informer cache.
func (s *Store) GetCached(ctx context.Context, namespace, name string) (runtime.Object, error) {
	res, err := s.storage.List(ctx, s.listPrefix(namespace), storage.ListOptions{
		ResourceVersion: "0",
		Predicate:       storage.Predicate{Field: fields.OneTermEqualSelector("metadata.name", name)},
	})
	if err == nil && len(res.Items) == 1 {
		s.setTypeMeta(res.Items[0])
		return res.Items[0], nil
	}
	return s.Get(ctx, namespace, name)
}

// List returns a typed list (e.g. *corev1.PodList) of the matching objects.
func (s *Store) List(ctx context.Context, namespace string, opts *metav1.ListOptions) (runtime.Object, error) {
	pred, err := s.predicate(opts)
	if err != nil {
		return nil, err
	}
	res, err := s.storage.List(ctx, s.listPrefix(namespace), storage.ListOptions{
		ResourceVersion:      opts.ResourceVersion,
		ResourceVersionMatch: opts.ResourceVersionMatch,
		Limit:                opts.Limit,
		Continue:             opts.Continue,
		Predicate:            pred,
	})
	if err != nil {
		return nil, err
	}
	list := s.Strategy.NewList()
	if err := meta.SetList(list, res.Items); err != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("building %s list: %w", s.Strategy.Resource, err))
	}
	lm, err := meta.ListAccessor(list)
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	lm.SetResourceVersion(fmt.Sprint(res.ResourceVersion))
	lm.SetContinue(res.Continue)
	lm.SetRemainingItemCount(res.RemainingItemCount)
	gvk := s.Strategy.Kind
	list.GetObjectKind().SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
	return list, nil
}

// Watch streams changes of the matching objects.
func (s *Store) Watch(ctx context.Context, namespace string, opts *metav1.ListOptions) (watch.Interface, error) {
	pred, err := s.predicate(opts)
	if err != nil {
		return nil, err
	}
	prefix := s.listPrefix(namespace)
	if name, ok := singleName(pred.Field); ok && (namespace != "" || !s.Strategy.Namespaced) {
		// A watch of one object (kubectl get NAME -w) only needs its own key.
		prefix = s.key(namespace, name)
	}
	w, err := s.storage.Watch(ctx, prefix, storage.WatchOptions{
		ResourceVersion:   opts.ResourceVersion,
		Predicate:         pred,
		SendInitialEvents: opts.SendInitialEvents,
		AllowBookmarks:    opts.AllowWatchBookmarks,
	})
	if err != nil {
		return nil, err
	}
	// Event objects are shared with other watchers: they already carry their
	// type from storage, and one that does not is copied before it is set.
	return watch.Filter(w, func(e watch.Event) (watch.Event, bool) {
		if e.Type != watch.Error && e.Object.GetObjectKind().GroupVersionKind().Empty() {
			e.Object = e.Object.DeepCopyObject()
			s.setTypeMeta(e.Object)
		}
		return e, true
	}), nil
}

func singleName(sel fields.Selector) (string, bool) {
	if sel == nil {
		return "", false
	}
	return sel.RequiresExactMatch("metadata.name")
}

func (s *Store) setTypeMeta(obj runtime.Object) {
	obj.GetObjectKind().SetGroupVersionKind(s.Strategy.Kind)
}

// Create stores a new object.
func (s *Store) Create(ctx context.Context, namespace string, obj runtime.Object, opts *metav1.CreateOptions) (runtime.Object, error) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, apierrors.NewBadRequest(err.Error())
	}
	if err := s.checkNamespace(ctx, namespace, m); err != nil {
		return nil, err
	}
	if m.GetName() == "" && m.GetGenerateName() == "" {
		return nil, s.invalid(m.GetName(), fieldRequired("metadata", "name", "name or generateName is required"))
	}
	generated := m.GetName() == ""
	if generated {
		m.SetName(generateName(m.GetGenerateName()))
	}
	s.prepareCreate(obj, m)
	if errs := s.validate(obj, nil); len(errs) > 0 {
		return nil, apierrors.NewInvalid(s.Strategy.Kind.GroupKind(), m.GetName(), errs)
	}
	if isDryRun(opts.DryRun) {
		return obj, nil
	}
	undo, err := s.allocate(ctx, obj, nil)
	if err != nil {
		return nil, err
	}
	out, err := s.create(ctx, namespace, obj)
	// Generated names can clash; upstream retries a few times before giving up.
	for retry := 0; generated && apierrors.IsAlreadyExists(err) && retry < 8; retry++ {
		m.SetName(generateName(m.GetGenerateName()))
		out, err = s.create(ctx, namespace, obj)
	}
	if err != nil {
		undo()
	}
	return out, err
}

func (s *Store) allocate(ctx context.Context, obj, old runtime.Object) (undo func(), err error) {
	if s.Strategy.Allocate == nil {
		return func() {}, nil
	}
	undo, err = s.Strategy.Allocate(ctx, obj, old)
	if err != nil {
		return nil, err
	}
	return undo, nil
}

// released gives back what a change or a deletion freed.
func (s *Store) released(ctx context.Context, obj, old runtime.Object) {
	if s.Strategy.Release != nil && old != nil {
		s.Strategy.Release(ctx, obj, old)
	}
}

func (s *Store) create(ctx context.Context, namespace string, obj runtime.Object) (runtime.Object, error) {
	m, _ := meta.Accessor(obj)
	out, err := s.storage.Create(ctx, s.key(namespace, m.GetName()), obj)
	if err != nil {
		return nil, err
	}
	s.setTypeMeta(out)
	return out, nil
}

func (s *Store) checkNamespace(ctx context.Context, namespace string, m metav1.Object) error {
	if !s.Strategy.Namespaced {
		m.SetNamespace("")
		return nil
	}
	if m.GetNamespace() == "" {
		m.SetNamespace(namespace)
	}
	if m.GetNamespace() != namespace {
		return apierrors.NewBadRequest("the namespace of the provided object does not match the namespace sent on the request")
	}
	if s.nsGetter == nil {
		return nil
	}
	ns, err := s.nsGetter(ctx, namespace)
	if err != nil {
		return err
	}
	if ns.DeletionTimestamp != nil || ns.Status.Phase == corev1.NamespaceTerminating {
		return apierrors.NewForbidden(s.Strategy.GroupResource(), m.GetName(),
			fmt.Errorf("unable to create new content in namespace %s because it is being terminated", namespace))
	}
	return nil
}

// prepareCreate sets the fields the system owns, then the resource's rules.
func (s *Store) prepareCreate(obj runtime.Object, m metav1.Object) {
	s.setTypeMeta(obj)
	m.SetUID(types.UID(uuid.NewUUID()))
	m.SetCreationTimestamp(metav1.NewTime(s.now().Truncate(time.Second)))
	m.SetResourceVersion("")
	m.SetDeletionTimestamp(nil)
	m.SetDeletionGracePeriodSeconds(nil)
	m.SetSelfLink("")
	if s.Strategy.Generation {
		m.SetGeneration(1)
	} else {
		m.SetGeneration(0)
	}
	// Defaults first, as upstream applies them while decoding: creation
	// rules such as a pod's QoS class read the defaulted spec.
	if s.Strategy.Default != nil {
		s.Strategy.Default(obj)
	}
	if s.Strategy.PrepareForCreate != nil {
		s.Strategy.PrepareForCreate(obj)
	}
}

func (s *Store) validate(obj, old runtime.Object) []*fieldError {
	if old == nil {
		if s.Strategy.Validate == nil {
			return nil
		}
		return s.Strategy.Validate(obj)
	}
	if s.Strategy.ValidateUpdate == nil {
		return nil
	}
	return s.Strategy.ValidateUpdate(obj, old)
}

func (s *Store) invalid(name string, errs ...*fieldError) error {
	return apierrors.NewInvalid(s.Strategy.Kind.GroupKind(), name, errs)
}

func isDryRun(dryRun []string) bool {
	for _, d := range dryRun {
		if strings.EqualFold(d, metav1.DryRunAll) {
			return true
		}
	}
	return false
}
