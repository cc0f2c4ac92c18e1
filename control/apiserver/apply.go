package apiserver

import (
	"fmt"
	"net/http"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"
)

// apply serves server-side apply (application/apply-patch+yaml): the
// applied configuration is merged into the live object by the field
// manager, which records who owns which field and refuses, with 409, to
// take a field another manager owns unless force is set. Applying to an
// object that does not exist creates it.
func (h *request) apply(opts *metav1.PatchOptions, p *patcher) {
	if opts.FieldManager == "" {
		h.fail(apierrors.NewInvalid(schema.GroupKind{Group: metav1.GroupName, Kind: "PatchOptions"}, "",
			field.ErrorList{field.Required(field.NewPath("fieldManager"), "is required for apply patch")}))
		return
	}
	if _, err := managerName(h.r, opts.FieldManager); err != nil {
		h.fail(err)
		return
	}
	fm := h.fieldManagers[fieldManagerKey{h.store.Strategy.Kind, h.info.Subresource}]
	if fm == nil {
		h.fail(unsupportedMediaType(string(p.kind)))
		return
	}
	data, err := yaml.YAMLToJSON(p.patch)
	if err != nil {
		h.fail(apierrors.NewBadRequest(fmt.Sprintf("error decoding YAML: %v", err)))
		return
	}
	applied := &unstructured.Unstructured{}
	if err := applied.UnmarshalJSON(data); err != nil {
		h.fail(apierrors.NewBadRequest(fmt.Sprintf("error decoding apply configuration: %v", err)))
		return
	}
	if gvk := applied.GroupVersionKind(); gvk != h.store.Strategy.Kind {
		h.fail(apierrors.NewBadRequest(fmt.Sprintf("the apply configuration is a %s, not a %s", gvk, h.store.Strategy.Kind)))
		return
	}
	if name := applied.GetName(); name != "" && name != h.info.Name {
		h.fail(apierrors.NewBadRequest(fmt.Sprintf("the name of the object (%s) does not match the name on the URL (%s)", name, h.info.Name)))
		return
	}
	force := opts.Force != nil && *opts.Force
	merge := func(live runtime.Object) (runtime.Object, error) {
		out, err := fm.Apply(live, applied.DeepCopy(), opts.FieldManager, force)
		if err != nil {
			return nil, asBadRequest(err)
		}
		return out, nil
	}
	ctx := h.r.Context()
	out, err := h.store.Update(ctx, h.info.Namespace, h.info.Name, h.info.Subresource, merge, opts.DryRun)
	if !apierrors.IsNotFound(err) || h.info.Subresource != "" {
		h.respond(http.StatusOK, out, err)
		return
	}
	live := h.newLive()
	m := mustMeta(live)
	m.SetName(h.info.Name)
	m.SetNamespace(h.info.Namespace)
	obj, err := merge(live)
	if err != nil {
		h.fail(err)
		return
	}
	out, err = h.store.Create(ctx, h.info.Namespace, obj, &metav1.CreateOptions{DryRun: opts.DryRun, FieldManager: opts.FieldManager})
	h.respond(http.StatusCreated, out, err)
}

func mustMeta(obj runtime.Object) metav1.Object {
	return obj.(metav1.ObjectMetaAccessor).GetObjectMeta()
}
