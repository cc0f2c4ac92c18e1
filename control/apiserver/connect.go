package apiserver

import (
	"net/http"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/wasmkube/wasmkube/control/registry"
)

// connect serves a connecter subresource (pods/log, pods/exec, ...): the
// parent is read, and the subresource's handler, usually a proxy to the
// node that runs it, serves the request as it is, upgrades included.
func (h *request) connect(sr *registry.Subresource) {
	if !slices.Contains(sr.Verbs, h.info.Verb) {
		h.fail(apierrors.NewMethodNotSupported(h.store.Strategy.GroupResource(), h.r.Method))
		return
	}
	parent, err := h.store.Get(h.r.Context(), h.info.Namespace, h.info.Name)
	if err != nil {
		h.fail(err)
		return
	}
	handler, err := sr.Connect(h.r.Context(), parent, h.query, func(w http.ResponseWriter, err error) { writeError(w, err) })
	if err != nil {
		h.fail(err)
		return
	}
	handler.ServeHTTP(h.w, h.r)
}
