package namespace

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"

	"github.com/wasmkube/wasmkube/control/controllers/framework"
)

// Name is the controller's name.
const Name = "namespace-controller"

// recheck is how soon a namespace with content left is looked at again;
// nothing else would wake the controller when the last pod goes.
const recheck = time.Second

type controller struct {
	client     kubernetes.Interface
	metadata   metadata.Interface
	namespaces corelisters.NamespaceLister
	ctrl       *framework.Controller
	now        func() time.Time
}

// Starter runs the namespace controller. It needs the rest.Config for the
// metadata client that reaches every kind.
func Starter(cfg *rest.Config) framework.Starter {
	return func(cc *framework.Context) (func(context.Context) error, error) {
		mc, err := metadata.NewForConfig(cfg)
		if err != nil {
			return nil, fmt.Errorf("metadata client: %w", err)
		}
		inf := cc.Informers.Core().V1().Namespaces()
		c := &controller{client: cc.Client, metadata: mc, namespaces: inf.Lister(), now: cc.Now}
		c.ctrl = framework.New(Name, c.sync)
		if _, err := inf.Informer().AddEventHandler(c.ctrl.Handler()); err != nil {
			return nil, fmt.Errorf("namespace handler: %w", err)
		}
		return func(ctx context.Context) error {
			return c.ctrl.Run(ctx, 2, inf.Informer().HasSynced)
		}, nil
	}
}

func (c *controller) sync(ctx context.Context, name string) error {
	cached, err := c.namespaces.Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("namespace %s: %w", name, err)
	}
	if cached.DeletionTimestamp == nil || !slices.Contains(cached.Spec.Finalizers, corev1.FinalizerKubernetes) {
		return nil
	}
	ns := cached.DeepCopy()
	resources, discoveryErr := c.namespacedResources()
	var deleteErrs []error
	for _, gvr := range resources {
		if err := c.deleteAll(ctx, gvr, name); err != nil {
			deleteErrs = append(deleteErrs, err)
		}
	}
	left, err := c.remaining(ctx, resources, name)
	if err != nil {
		deleteErrs = append(deleteErrs, err)
	}
	c.setConditions(ns, discoveryErr, errors.Join(deleteErrs...), left)
	if !apiequality.Semantic.DeepEqual(ns.Status, cached.Status) {
		out, err := c.client.CoreV1().Namespaces().UpdateStatus(ctx, ns, metav1.UpdateOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("namespace %s status: %w", name, err)
		}
		if err == nil {
			ns = out
		}
	}
	if discoveryErr != nil || len(deleteErrs) > 0 {
		return fmt.Errorf("emptying namespace %s: %w", name, errors.Join(append(deleteErrs, discoveryErr)...))
	}
	if left.total > 0 {
		c.ctrl.EnqueueAfter(name, recheck)
		return nil
	}
	return c.finalize(ctx, ns)
}

// namespacedResources asks discovery for every namespaced resource that
// can be listed and deleted. A group that fails discovery is reported but
// the others are still emptied.
func (c *controller) namespacedResources() ([]schema.GroupVersionResource, error) {
	lists, err := c.client.Discovery().ServerPreferredNamespacedResources()
	if err != nil && !discovery.IsGroupDiscoveryFailedError(err) {
		return nil, fmt.Errorf("discovery: %w", err)
	}
	var out []schema.GroupVersionResource
	for _, l := range lists {
		gv, perr := schema.ParseGroupVersion(l.GroupVersion)
		if perr != nil {
			continue
		}
		for _, r := range l.APIResources {
			if strings.Contains(r.Name, "/") || !slices.Contains(r.Verbs, "list") || !slices.Contains(r.Verbs, "delete") {
				continue
			}
			out = append(out, gv.WithResource(r.Name))
		}
	}
	return out, err
}

func (c *controller) deleteAll(ctx context.Context, gvr schema.GroupVersionResource, ns string) error {
	client := c.metadata.Resource(gvr).Namespace(ns)
	// One request per kind when the server allows it.
	err := client.DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{})
	if err == nil {
		return nil
	}
	if !apierrors.IsMethodNotSupported(err) && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting %s in %s: %w", gvr.Resource, ns, err)
	}
	list, err := client.List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("listing %s in %s: %w", gvr.Resource, ns, err)
	}
	for _, item := range list.Items {
		if item.DeletionTimestamp != nil {
			continue
		}
		if err := client.Delete(ctx, item.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("deleting %s %s/%s: %w", gvr.Resource, ns, item.Name, err)
		}
	}
	return nil
}

// leftovers counts what remains, per resource and per finalizer, for the
// conditions.
type leftovers struct {
	total      int
	byResource map[string]int
	byFinal    map[string]int
}

func (c *controller) remaining(ctx context.Context, resources []schema.GroupVersionResource, ns string) (leftovers, error) {
	left := leftovers{byResource: map[string]int{}, byFinal: map[string]int{}}
	var errs []error
	for _, gvr := range resources {
		list, err := c.metadata.Resource(gvr).Namespace(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			errs = append(errs, fmt.Errorf("listing %s in %s: %w", gvr.Resource, ns, err))
			continue
		}
		if n := len(list.Items); n > 0 {
			left.total += n
			left.byResource[gvr.GroupResource().String()] += n
		}
		for _, item := range list.Items {
			for _, f := range item.Finalizers {
				left.byFinal[f]++
			}
		}
	}
	return left, errors.Join(errs...)
}

// setConditions reports the deletion's progress with upstream's condition
// types, reasons and messages.
func (c *controller) setConditions(ns *corev1.Namespace, discoveryErr, deleteErr error, left leftovers) {
	set := func(t corev1.NamespaceConditionType, bad bool, badReason, badMsg, okReason, okMsg string) {
		cond := corev1.NamespaceCondition{Type: t, Status: corev1.ConditionFalse, Reason: okReason, Message: okMsg}
		if bad {
			cond.Status, cond.Reason, cond.Message = corev1.ConditionTrue, badReason, badMsg
		}
		for i := range ns.Status.Conditions {
			cur := &ns.Status.Conditions[i]
			if cur.Type != t {
				continue
			}
			if cur.Status == cond.Status && cur.Reason == cond.Reason && cur.Message == cond.Message {
				return
			}
			cond.LastTransitionTime = metav1.NewTime(c.now())
			*cur = cond
			return
		}
		cond.LastTransitionTime = metav1.NewTime(c.now())
		ns.Status.Conditions = append(ns.Status.Conditions, cond)
	}
	errMsg := func(err error) string {
		if err == nil {
			return ""
		}
		return err.Error()
	}
	set(corev1.NamespaceDeletionDiscoveryFailure, discoveryErr != nil, "DiscoveryFailed", "Discovery failed for some groups: "+errMsg(discoveryErr),
		"ResourcesDiscovered", "All resources successfully discovered")
	set(corev1.NamespaceDeletionGVParsingFailure, false, "", "", "ParsedGroupVersions", "All legacy kube types successfully parsed")
	set(corev1.NamespaceDeletionContentFailure, deleteErr != nil, "ContentDeletionFailed", "Failed to delete all resource types, "+errMsg(deleteErr),
		"ContentDeleted", "All content successfully deleted, may be waiting on finalization")
	set(corev1.NamespaceContentRemaining, left.total > 0, "SomeResourcesRemain", "Some resources are remaining: "+describe(left.byResource, "resource instances"),
		"ContentRemoved", "All content successfully removed")
	set(corev1.NamespaceFinalizersRemaining, len(left.byFinal) > 0, "SomeFinalizersRemain", "Some content in the namespace has finalizers remaining: "+describe(left.byFinal, "resource instances"),
		"ContentHasNoFinalizers", "All content-preserving finalizers finished")
}

// describe renders counts in upstream's words: "pods has 2 resource instances".
func describe(counts map[string]int, noun string) string {
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s has %d %s", k, counts[k], noun)
	}
	return strings.Join(parts, ", ")
}

// finalize removes the "kubernetes" finalizer through the finalize
// subresource; the API server then deletes the namespace if no other
// finalizer remains.
func (c *controller) finalize(ctx context.Context, ns *corev1.Namespace) error {
	var rest []corev1.FinalizerName
	for _, f := range ns.Spec.Finalizers {
		if f != corev1.FinalizerKubernetes {
			rest = append(rest, f)
		}
	}
	ns.Spec.Finalizers = rest
	_, err := c.client.CoreV1().Namespaces().Finalize(ctx, ns, metav1.UpdateOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("finalizing namespace %s: %w", ns.Name, err)
	}
	return nil
}
