package apiserver

import (
	"encoding/json"
	"fmt"
	"mime"
	"net/http"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
)

// patcher applies one request's patch document to an encoded object.
type patcher struct {
	kind  types.PatchType
	patch []byte
}

func (h *request) newPatcher() (*patcher, error) {
	mt, _, err := mime.ParseMediaType(h.r.Header.Get("Content-Type"))
	if err != nil {
		return nil, unsupportedMediaType(h.r.Header.Get("Content-Type"))
	}
	kind := types.PatchType(mt)
	switch kind {
	case types.JSONPatchType, types.MergePatchType, types.StrategicMergePatchType, types.ApplyYAMLPatchType:
	default:
		return nil, unsupportedMediaType(mt)
	}
	body, err := readBody(h.r)
	if err != nil {
		return nil, err
	}
	return &patcher{kind: kind, patch: body}, nil
}

// apply patches original (JSON); schema is the Go type that strategic merge
// patch reads its merge keys from. A patch library that panics on a
// malformed document must not take the request down with it: that becomes a
// 400 like any other bad patch.
func (p *patcher) apply(original []byte, schema runtime.Object) (out []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, apierrors.NewBadRequest(fmt.Sprintf("the patch could not be applied: %v", r))
		}
	}()
	switch p.kind {
	case types.JSONPatchType:
		var patch jsonpatch.Patch
		if patch, err = jsonpatch.DecodePatch(p.patch); err == nil {
			if err = checkJSONPatch(patch); err == nil {
				out, err = patch.Apply(original)
			}
		}
	case types.MergePatchType:
		out, err = jsonpatch.MergePatch(original, p.patch)
	case types.StrategicMergePatchType:
		out, err = strategicpatch.StrategicMergePatch(original, p.patch, schema)
	}
	if err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("the patch could not be applied: %v", err))
	}
	return out, nil
}

func (h *request) patch() {
	var opts metav1.PatchOptions
	if err := h.decodeParams(&opts); err != nil {
		h.fail(err)
		return
	}
	p, err := h.newPatcher()
	if err != nil {
		h.fail(err)
		return
	}
	if p.kind == types.ApplyYAMLPatchType {
		h.apply(&opts, p)
		return
	}
	manager, err := managerName(h.r, opts.FieldManager)
	if err != nil {
		h.fail(err)
		return
	}
	var warnings []string
	kind := h.store.Strategy.Kind
	out, err := h.store.Update(h.r.Context(), h.info.Namespace, h.info.Name, h.info.Subresource, func(existing runtime.Object) (runtime.Object, error) {
		obj, w, err := patchObject(p, existing, h.store.Strategy.New, kind, opts.FieldValidation)
		warnings = w
		if err != nil {
			return nil, err
		}
		return h.track(existing, obj, manager), nil
	}, opts.DryRun)
	h.warn(warnings)
	h.respond(http.StatusOK, out, err)
}

// patchObject applies p to existing and decodes the result into a new object.
func patchObject(p *patcher, existing runtime.Object, newObj func() runtime.Object, kind schema.GroupVersionKind, fieldValidation string) (runtime.Object, []string, error) {
	original, err := json.Marshal(existing)
	if err != nil {
		return nil, nil, apierrors.NewInternalError(err)
	}
	patched, err := p.apply(original, newObj())
	if err != nil {
		return nil, nil, err
	}
	obj := newObj()
	strictErrs, err := decodeStrict(patched, obj, kind)
	if err != nil {
		return nil, nil, err
	}
	warnings, err := applyFieldValidation(strictErrs, fieldValidation, kind)
	return obj, warnings, err
}

// scale serves the /scale subresource of deployments, replicasets and
// statefulsets as autoscaling/v1 Scale objects.
func (h *request) scale() {
	ctx := h.r.Context()
	ns, name := h.info.Namespace, h.info.Name
	scaleKind := autoscalingv1.SchemeGroupVersion.WithKind("Scale")
	newScale := func() runtime.Object { return &autoscalingv1.Scale{} }
	switch h.info.Verb {
	case "get":
		sc, err := h.store.GetScale(ctx, ns, name)
		h.respond(http.StatusOK, sc, err)
	case "update":
		var opts metav1.UpdateOptions
		if err := h.decodeParams(&opts); err != nil {
			h.fail(err)
			return
		}
		body, warnings, err := h.decodeBodyAs(newScale, scaleKind, opts.FieldValidation)
		if err != nil {
			h.fail(err)
			return
		}
		h.warn(warnings)
		sc, err := h.store.UpdateScale(ctx, ns, name, func(*autoscalingv1.Scale) (*autoscalingv1.Scale, error) {
			return body.(*autoscalingv1.Scale), nil
		}, opts.DryRun)
		h.respond(http.StatusOK, sc, err)
	case "patch":
		var opts metav1.PatchOptions
		if err := h.decodeParams(&opts); err != nil {
			h.fail(err)
			return
		}
		p, err := h.newPatcher()
		if err != nil {
			h.fail(err)
			return
		}
		sc, err := h.store.UpdateScale(ctx, ns, name, func(cur *autoscalingv1.Scale) (*autoscalingv1.Scale, error) {
			obj, _, err := patchObject(p, cur, newScale, scaleKind, opts.FieldValidation)
			if err != nil {
				return nil, err
			}
			return obj.(*autoscalingv1.Scale), nil
		}, opts.DryRun)
		h.respond(http.StatusOK, sc, err)
	default:
		h.fail(apierrors.NewMethodNotSupported(h.store.Strategy.GroupResource(), h.info.Verb))
	}
}

// checkJSONPatch refuses operations missing the members RFC 6902 requires,
// which the patch library would otherwise dereference.
func checkJSONPatch(patch jsonpatch.Patch) error {
	for i, op := range patch {
		kind := op.Kind()
		needs := map[string][]string{
			"add": {"path", "value"}, "replace": {"path", "value"}, "test": {"path", "value"},
			"remove": {"path"}, "move": {"from", "path"}, "copy": {"from", "path"},
		}[kind]
		if needs == nil {
			return fmt.Errorf("operation %d: unsupported op %q", i, kind)
		}
		for _, member := range needs {
			if raw, ok := op[member]; !ok || raw == nil {
				return fmt.Errorf("operation %d (%s): missing %q", i, kind, member)
			}
		}
	}
	return nil
}
