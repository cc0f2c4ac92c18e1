package openapi

import (
	"fmt"
	"reflect"
	"strings"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// param is a path or query parameter, described once for both dialects.
type param struct {
	name, in, desc, typ string
	required            bool
}

type response struct {
	code int
	def  string // definition name of the body
}

// operation is one HTTP method on a path in a dialect-neutral form; render.go
// turns it into a Swagger 2.0 and an OpenAPI 3.0 operation.
type operation struct {
	method, action, id, desc string
	gvk                      schema.GroupVersionKind
	params                   []param
	body                     string // definition name of the request body, if any
	patch                    bool
	watchable                bool
	responses                []response
}

type pathItem struct {
	path   string
	gv     schema.GroupVersion
	common []param
	ops    []operation
}

// optionParams derives query parameters from an options struct, as upstream
// does, so names, types and descriptions track apimachinery.
func optionParams(obj any, skip ...string) []param {
	t := reflect.TypeOf(obj)
	docs := swaggerDoc(t)
	var out []param
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if f.Anonymous || name == "" || name == "-" || contains(skip, name) {
			continue
		}
		typ := "string"
		ft := f.Type
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		switch ft.Kind() {
		case reflect.Bool:
			typ = "boolean"
		case reflect.Int, reflect.Int32, reflect.Int64:
			typ = "integer"
		case reflect.Struct:
			continue // preconditions only travel in the body
		}
		out = append(out, param{name: name, in: "query", desc: docs[name], typ: typ})
	}
	return out
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// queryParams are computed once per New: they depend only on apimachinery.
type queryParams struct {
	list, create, update, patch, del, deleteCollection []param
	pretty                                             param
}

func newQueryParams() queryParams {
	list := optionParams(metav1.ListOptions{})
	del := optionParams(metav1.DeleteOptions{})
	return queryParams{
		list:             list,
		create:           optionParams(metav1.CreateOptions{}),
		update:           optionParams(metav1.UpdateOptions{}),
		patch:            optionParams(metav1.PatchOptions{}),
		del:              del,
		deleteCollection: append(append([]param{}, del...), list...),
		pretty:           param{name: "pretty", in: "query", typ: "string", desc: "If 'true', then the output is pretty printed. Defaults to 'false' unless the user-agent indicates a browser or command-line HTTP tool (curl and wget)."},
	}
}

// opIDPrefix names a group version the way upstream's operation IDs and
// tags do: "" v1 → CoreV1, rbac.authorization.k8s.io v1 → RbacAuthorizationV1.
func opIDPrefix(gv schema.GroupVersion) string {
	g := strings.TrimSuffix(gv.Group, ".k8s.io")
	if g == "" {
		g = "core"
	}
	var b strings.Builder
	for _, part := range strings.FieldsFunc(g, func(r rune) bool { return r == '.' || r == '-' }) {
		b.WriteString(strings.ToUpper(part[:1]) + part[1:])
	}
	return b.String() + strings.ToUpper(gv.Version[:1]) + gv.Version[1:]
}

// subresourceKind is the kind exchanged on a subresource: the parent's own
// for status, and the fixed upstream kinds for the others.
func subresourceKind(parent schema.GroupVersionKind, sub string) (schema.GroupVersionKind, any, bool) {
	switch sub {
	case "status", "finalize":
		return parent, nil, true
	case "scale":
		return autoscalingv1.SchemeGroupVersion.WithKind("Scale"), autoscalingv1.Scale{}, true
	case "binding":
		return corev1.SchemeGroupVersion.WithKind("Binding"), corev1.Binding{}, true
	case "eviction":
		return policyv1.SchemeGroupVersion.WithKind("Eviction"), policyv1.Eviction{}, true
	}
	return schema.GroupVersionKind{}, nil, false
}

// resourcePaths returns the upstream-shaped paths of one resource: the
// collection, the item, the all-namespaces list of namespaced resources
// and the subresources. kind and list are definition names.
func (s *schemas) resourcePaths(r Resource, kind, list string, q queryParams) ([]pathItem, error) {
	gv := r.GVK.GroupVersion()
	prefix := "/apis/" + gv.Group + "/" + gv.Version
	if gv.Group == "" {
		prefix = "/api/" + gv.Version
	}
	id := opIDPrefix(gv)
	k := r.GVK.Kind
	scope, base := "", prefix
	var common []param
	nsParam := param{name: "namespace", in: "path", typ: "string", required: true, desc: "object name and auth scope, such as for teams and projects"}
	if r.Namespaced {
		scope, base = "Namespaced", prefix+"/namespaces/{namespace}"
		common = append(common, nsParam)
	}
	nameParam := param{name: "name", in: "path", typ: "string", required: true, desc: "name of the " + k}
	status, deleteOpts := metaDef("Status"), metaDef("DeleteOptions")
	collection := pathItem{path: base + "/" + r.Resource, gv: gv, common: append(append([]param{}, common...), q.pretty), ops: []operation{
		{method: "get", action: "list", id: "list" + id + scope + k, desc: "list or watch objects of kind " + k, gvk: r.GVK, params: q.list, watchable: true, responses: []response{{200, list}}},
		{method: "post", action: "post", id: "create" + id + scope + k, desc: "create a " + k, gvk: r.GVK, params: q.create, body: kind, responses: []response{{200, kind}, {201, kind}, {202, kind}}},
		{method: "delete", action: "deletecollection", id: "delete" + id + "Collection" + scope + k, desc: "delete collection of " + k, gvk: r.GVK, params: q.deleteCollection, body: deleteOpts, responses: []response{{200, status}}},
	}}
	itemCommon := append([]param{nameParam}, common...)
	itemCommon = append(itemCommon, q.pretty)
	item := pathItem{path: base + "/" + r.Resource + "/{name}", gv: gv, common: itemCommon, ops: []operation{
		{method: "get", action: "get", id: "read" + id + scope + k, desc: "read the specified " + k, gvk: r.GVK, responses: []response{{200, kind}}},
		{method: "put", action: "put", id: "replace" + id + scope + k, desc: "replace the specified " + k, gvk: r.GVK, params: q.update, body: kind, responses: []response{{200, kind}, {201, kind}}},
		{method: "patch", action: "patch", id: "patch" + id + scope + k, desc: "partially update the specified " + k, gvk: r.GVK, params: q.patch, body: metaDef("Patch"), patch: true, responses: []response{{200, kind}, {201, kind}}},
		{method: "delete", action: "delete", id: "delete" + id + scope + k, desc: "delete a " + k, gvk: r.GVK, params: q.del, body: deleteOpts, responses: []response{{200, status}, {202, status}}},
	}}
	out := []pathItem{collection, item}
	if r.Namespaced {
		out = append(out, pathItem{path: prefix + "/" + r.Resource, gv: gv, common: []param{q.pretty}, ops: []operation{
			{method: "get", action: "list", id: "list" + id + k + "ForAllNamespaces", desc: "list or watch objects of kind " + k, gvk: r.GVK, params: q.list, watchable: true, responses: []response{{200, list}}},
		}})
	}
	for _, sub := range r.Subresources {
		subKind, obj, ok := subresourceKind(r.GVK, sub)
		if !ok {
			continue // undocumented subresources (log, exec, ...) are served but not described
		}
		def := kind
		if obj != nil {
			var err error
			if def, err = s.define(reflect.TypeOf(obj)); err != nil {
				return nil, err
			}
			s.addGVK(def, subKind)
		}
		title := strings.ToUpper(sub[:1]) + sub[1:]
		p := pathItem{path: item.path + "/" + sub, gv: gv, common: itemCommon}
		switch sub {
		case "finalize":
			p.ops = []operation{{method: "put", action: "put", id: "replace" + id + scope + k + title, desc: "replace " + sub + " of the specified " + k, gvk: subKind, params: q.update, body: def, responses: []response{{200, def}, {201, def}}}}
		case "binding", "eviction":
			p.ops = []operation{{method: "post", action: "post", id: "create" + id + scope + k + title, desc: "create " + sub + " of a " + k, gvk: subKind, params: q.create, body: def, responses: []response{{200, def}, {201, def}, {202, def}}}}
		default:
			p.ops = []operation{
				{method: "get", action: "get", id: "read" + id + scope + k + title, desc: "read " + sub + " of the specified " + k, gvk: subKind, responses: []response{{200, def}}},
				{method: "put", action: "put", id: "replace" + id + scope + k + title, desc: "replace " + sub + " of the specified " + k, gvk: subKind, params: q.update, body: def, responses: []response{{200, def}, {201, def}}},
				{method: "patch", action: "patch", id: "patch" + id + scope + k + title, desc: "partially update " + sub + " of the specified " + k, gvk: subKind, params: q.patch, body: metaDef("Patch"), patch: true, responses: []response{{200, def}, {201, def}}},
			}
		}
		out = append(out, p)
	}
	return out, nil
}

func metaDef(kind string) string { return "io.k8s.apimachinery.pkg.apis.meta.v1." + kind }

// defineMeta defines the apimachinery types every group version's
// operations exchange besides its own kinds, and tags DeleteOptions and WatchEvent with
// the group version, as upstream does, so clients can decode them there.
func (s *schemas) defineMeta(gvs []schema.GroupVersion) error {
	for _, obj := range []any{metav1.Status{}, metav1.DeleteOptions{}, metav1.Patch{}, metav1.WatchEvent{}} {
		if _, err := s.define(reflect.TypeOf(obj)); err != nil {
			return fmt.Errorf("openapi: %w", err)
		}
	}
	s.addGVK(metaDef("Status"), metav1.SchemeGroupVersion.WithKind("Status"))
	for _, gv := range gvs {
		s.addGVK(metaDef("DeleteOptions"), gv.WithKind("DeleteOptions"))
		s.addGVK(metaDef("WatchEvent"), gv.WithKind("WatchEvent"))
	}
	return nil
}
