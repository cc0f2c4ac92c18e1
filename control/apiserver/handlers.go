package apiserver

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/wasmkube/wasmkube/control/registry"
)

// maxRequestBody is kube-apiserver's limit on a request body (3 MiB).
const maxRequestBody = 3 << 20

// serveResource handles every request for a resource, its objects and their
// subresources. It is the same code for every kind.
func (s *Server) serveResource(w http.ResponseWriter, r *http.Request, info requestInfo) {
	store, ok := s.stores[schema.GroupVersionResource{Group: info.Group, Version: info.Version, Resource: info.Resource}]
	if !ok || (info.Namespace != "" && !store.Strategy.Namespaced && info.Resource != "namespaces") {
		writeError(w, apierrors.NewNotFound(schema.GroupResource{Group: info.Group, Resource: info.Resource}, info.Name))
		return
	}
	if !store.Strategy.Namespaced {
		info.Namespace = ""
	}
	out, err := negotiate(r)
	if err != nil {
		writeError(w, err)
		return
	}
	h := &request{Server: s, w: w, r: r, info: info, store: store, out: out, query: r.URL.Query()}
	switch {
	case info.Subresource == "scale" && store.Strategy.Scale != nil:
		h.scale()
	case info.Subresource != "" && info.Subresource != "status":
		h.customSubresource()
	default:
		h.object()
	}
}

// request is one API request in flight.
type request struct {
	*Server
	w     http.ResponseWriter
	r     *http.Request
	info  requestInfo
	store *registry.Store
	out   negotiated
	query url.Values
}

func (h *request) object() {
	ctx := h.r.Context()
	ns, name, sub := h.info.Namespace, h.info.Name, h.info.Subresource
	switch h.info.Verb {
	case "get":
		obj, err := h.store.Get(ctx, ns, name)
		h.respond(http.StatusOK, obj, err)
	case "list":
		opts, err := h.listOptions()
		if err != nil {
			h.fail(err)
			return
		}
		list, err := h.store.List(ctx, ns, opts)
		h.respond(http.StatusOK, list, err)
	case "watch":
		h.watch()
	case "create":
		if sub != "" || name != "" {
			h.fail(apierrors.NewMethodNotSupported(h.store.Strategy.GroupResource(), "create"))
			return
		}
		h.create()
	case "update":
		h.update()
	case "patch":
		h.patch()
	case "delete":
		h.delete()
	case "deletecollection":
		h.deleteCollection()
	default:
		h.fail(apierrors.NewMethodNotSupported(h.store.Strategy.GroupResource(), h.r.Method))
	}
}

func (h *request) create() {
	var opts metav1.CreateOptions
	if err := h.decodeParams(&opts); err != nil {
		h.fail(err)
		return
	}
	obj, manager, err := h.decodeWrite(opts.FieldValidation, opts.FieldManager)
	if err != nil {
		h.fail(err)
		return
	}
	obj = h.track(h.newLive(), obj, manager)
	out, err := h.store.Create(h.r.Context(), h.info.Namespace, obj, &opts)
	h.respond(http.StatusCreated, out, err)
}

// decodeWrite reads the body of a create or an update, sends its field
// warnings, and names the field manager the write is recorded under.
func (h *request) decodeWrite(fieldValidation, fieldManager string) (runtime.Object, string, error) {
	obj, warnings, err := h.decodeBody(h.store.Strategy.New, fieldValidation)
	if err != nil {
		return nil, "", err
	}
	h.warn(warnings)
	manager, err := managerName(h.r, fieldManager)
	return obj, manager, err
}

func (h *request) update() {
	var opts metav1.UpdateOptions
	if err := h.decodeParams(&opts); err != nil {
		h.fail(err)
		return
	}
	obj, manager, err := h.decodeWrite(opts.FieldValidation, opts.FieldManager)
	if err != nil {
		h.fail(err)
		return
	}
	out, err := h.store.Update(h.r.Context(), h.info.Namespace, h.info.Name, h.info.Subresource,
		func(existing runtime.Object) (runtime.Object, error) {
			return h.track(existing, obj.DeepCopyObject(), manager), nil
		}, opts.DryRun)
	h.respond(http.StatusOK, out, err)
}

func (h *request) delete() {
	opts, err := h.deleteOptions()
	if err != nil {
		h.fail(err)
		return
	}
	obj, gone, err := h.store.Delete(h.r.Context(), h.info.Namespace, h.info.Name, opts)
	code := http.StatusOK
	if !gone {
		code = http.StatusAccepted // still there, waiting for finalizers or its grace period
	}
	h.respond(code, obj, err)
}

func (h *request) deleteCollection() {
	opts, err := h.deleteOptions()
	if err != nil {
		h.fail(err)
		return
	}
	listOpts, err := h.listOptions()
	if err != nil {
		h.fail(err)
		return
	}
	list, err := h.store.DeleteCollection(h.r.Context(), h.info.Namespace, listOpts, opts)
	h.respond(http.StatusOK, list, err)
}

func (h *request) customSubresource() {
	sr := h.store.Subresource(h.info.Subresource)
	if sr != nil && sr.Connect != nil {
		h.connect(sr)
		return
	}
	if sr == nil || (h.info.Verb != "create" || sr.Create == nil) && (h.info.Verb != "update" || sr.Update == nil) {
		h.fail(apierrors.NewNotFound(h.store.Strategy.GroupResource(), h.info.Name))
		return
	}
	var opts metav1.CreateOptions
	if err := h.decodeParams(&opts); err != nil {
		h.fail(err)
		return
	}
	body, warnings, err := h.decodeBodyAs(sr.New, sr.Kind, opts.FieldValidation)
	if err != nil {
		h.fail(err)
		return
	}
	h.warn(warnings)
	change, code := h.store.CreateSubresource, http.StatusCreated
	if h.info.Verb == "update" {
		change, code = h.store.UpdateSubresource, http.StatusOK
	}
	out, err := change(h.r.Context(), h.info.Namespace, h.info.Name, h.info.Subresource, body, opts.DryRun)
	if err == nil && out == nil {
		h.respond(code, successStatus(), nil)
		return
	}
	h.respond(code, out, err)
}

// respond writes obj in the negotiated form, or the error.
func (h *request) respond(code int, obj runtime.Object, err error) {
	if err != nil {
		h.fail(err)
		return
	}
	if _, isStatus := obj.(*metav1.Status); !isStatus {
		switch h.out.form {
		case formTable:
			obj, err = h.toTable(obj)
		case formMetadata:
			obj, err = toMetadata(obj)
		}
		if err != nil {
			h.fail(err)
			return
		}
	}
	writeObject(h.w, code, obj, h.out.yaml)
}

func (h *request) fail(err error) { writeError(h.w, err) }

// warn sends warnings in the standard Warning header, as kubectl prints them.
func (h *request) warn(warnings []string) {
	for _, msg := range warnings {
		h.w.Header().Add("Warning", fmt.Sprintf(`299 - %q`, msg))
	}
}

func (h *request) decodeParams(into runtime.Object) error {
	if err := h.paramCodec.DecodeParameters(h.query, metav1.SchemeGroupVersion, into); err != nil {
		return apierrors.NewBadRequest(err.Error())
	}
	return nil
}

func (h *request) listOptions() (*metav1.ListOptions, error) {
	var opts metav1.ListOptions
	if err := h.decodeParams(&opts); err != nil {
		return nil, err
	}
	return &opts, nil
}

// deleteOptions merges the body's DeleteOptions with the query's, as
// kubectl sends them in either.
func (h *request) deleteOptions() (*metav1.DeleteOptions, error) {
	var opts metav1.DeleteOptions
	body, err := readBody(h.r)
	if err != nil {
		return nil, err
	}
	// As upstream: the body's options when there is a body, else the query's.
	if len(strings.TrimSpace(string(body))) == 0 {
		if err := h.decodeParams(&opts); err != nil {
			return nil, err
		}
		return &opts, nil
	}
	if err := unmarshalLoose(body, h.r.Header.Get("Content-Type"), &opts); err != nil {
		return nil, err
	}
	if len(opts.DryRun) == 0 {
		opts.DryRun = h.query["dryRun"]
	}
	return &opts, nil
}

func readBody(r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBody+1))
	if err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("reading request body: %v", err))
	}
	if len(body) > maxRequestBody {
		return nil, apierrors.NewRequestEntityTooLargeError("limit is 3145728")
	}
	return body, nil
}
