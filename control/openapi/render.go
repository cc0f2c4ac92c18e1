package openapi

import (
	"net/http"
	"sort"
	"strings"

	"k8s.io/kube-openapi/pkg/spec3"
	"k8s.io/kube-openapi/pkg/validation/spec"
)

// The media types the API server reads and writes; listed per operation as
// upstream does so generated clients know what they may send.
func producedTypes(watchable bool) []string {
	types := []string{"application/json", "application/yaml", "application/vnd.kubernetes.protobuf", "application/cbor"}
	if watchable {
		types = append(types, "application/json;stream=watch", "application/vnd.kubernetes.protobuf;stream=watch", "application/cbor-seq")
	}
	return types
}

func patchTypes() []string {
	return []string{"application/apply-patch+yaml", "application/apply-patch+cbor", "application/json-patch+json", "application/merge-patch+json", "application/strategic-merge-patch+json"}
}

// tag is upstream's operation tag: "core_v1", "rbacAuthorization_v1".
func tag(p pathItem) string {
	prefix := strings.TrimSuffix(opIDPrefix(p.gv), strings.ToUpper(p.gv.Version[:1])+p.gv.Version[1:])
	return strings.ToLower(prefix[:1]) + prefix[1:] + "_" + p.gv.Version
}

func sortedParams(ps []param) []param {
	out := append([]param{}, ps...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

func (o operation) extensions() spec.VendorExtensible {
	var e spec.VendorExtensible
	e.AddExtension("x-kubernetes-action", o.action)
	e.AddExtension("x-kubernetes-group-version-kind", map[string]any{"group": o.gvk.Group, "version": o.gvk.Version, "kind": o.gvk.Kind})
	return e
}

// bodyRequired: a delete may come without options; writes need an object.
func (o operation) bodyRequired() bool { return o.method != "delete" }

func (p pathItem) v2() spec.PathItem {
	item := spec.PathItem{}
	for _, c := range p.common {
		item.Parameters = append(item.Parameters, c.v2())
	}
	for _, o := range p.ops {
		op := &spec.Operation{VendorExtensible: o.extensions()}
		op.Description, op.ID, op.Tags, op.Schemes = o.desc, o.id, []string{tag(p)}, []string{"https"}
		op.Consumes, op.Produces = []string{"*/*"}, producedTypes(o.watchable)
		if o.patch {
			op.Consumes = patchTypes()
		}
		if o.body != "" {
			body := refSchema(v2RefPrefix + o.body)
			op.Parameters = append(op.Parameters, spec.Parameter{ParamProps: spec.ParamProps{Name: "body", In: "body", Required: o.bodyRequired(), Schema: &body}})
		}
		for _, q := range sortedParams(o.params) {
			op.Parameters = append(op.Parameters, q.v2())
		}
		op.Responses = &spec.Responses{ResponsesProps: spec.ResponsesProps{StatusCodeResponses: map[int]spec.Response{
			http.StatusUnauthorized: {ResponseProps: spec.ResponseProps{Description: "Unauthorized"}},
		}}}
		for _, r := range o.responses {
			schema := refSchema(v2RefPrefix + r.def)
			op.Responses.StatusCodeResponses[r.code] = spec.Response{ResponseProps: spec.ResponseProps{Description: http.StatusText(r.code), Schema: &schema}}
		}
		switch o.method {
		case "get":
			item.Get = op
		case "put":
			item.Put = op
		case "post":
			item.Post = op
		case "patch":
			item.Patch = op
		case "delete":
			item.Delete = op
		}
	}
	return item
}

func (q param) v2() spec.Parameter {
	p := spec.Parameter{ParamProps: spec.ParamProps{Name: q.name, In: q.in, Description: q.desc, Required: q.required}}
	p.Type = q.typ
	p.UniqueItems = true
	return p
}

func (q param) v3() *spec3.Parameter {
	schema := scalar(q.typ, "")
	schema.UniqueItems = true
	return &spec3.Parameter{ParameterProps: spec3.ParameterProps{Name: q.name, In: q.in, Description: q.desc, Required: q.required, Schema: &schema}}
}

func content(types []string, def string) map[string]*spec3.MediaType {
	schema := refSchema(v3RefPrefix + def)
	out := make(map[string]*spec3.MediaType, len(types))
	for _, t := range types {
		out[t] = &spec3.MediaType{MediaTypeProps: spec3.MediaTypeProps{Schema: &schema}}
	}
	return out
}

func (p pathItem) v3() *spec3.Path {
	item := &spec3.Path{}
	for _, c := range p.common {
		item.Parameters = append(item.Parameters, c.v3())
	}
	for _, o := range p.ops {
		op := &spec3.Operation{VendorExtensible: o.extensions()}
		op.Description, op.OperationId, op.Tags = o.desc, o.id, []string{tag(p)}
		if o.body != "" {
			types := []string{"*/*"}
			if o.patch {
				types = patchTypes()
			}
			op.RequestBody = &spec3.RequestBody{RequestBodyProps: spec3.RequestBodyProps{Content: content(types, o.body), Required: o.bodyRequired()}}
		}
		for _, q := range sortedParams(o.params) {
			op.Parameters = append(op.Parameters, q.v3())
		}
		op.Responses = &spec3.Responses{ResponsesProps: spec3.ResponsesProps{StatusCodeResponses: map[int]*spec3.Response{
			http.StatusUnauthorized: {ResponseProps: spec3.ResponseProps{Description: "Unauthorized"}},
		}}}
		for _, r := range o.responses {
			op.Responses.StatusCodeResponses[r.code] = &spec3.Response{ResponseProps: spec3.ResponseProps{Description: http.StatusText(r.code), Content: content(producedTypes(o.watchable), r.def)}}
		}
		switch o.method {
		case "get":
			item.Get = op
		case "put":
			item.Put = op
		case "post":
			item.Post = op
		case "patch":
			item.Patch = op
		case "delete":
			item.Delete = op
		}
	}
	return item
}
