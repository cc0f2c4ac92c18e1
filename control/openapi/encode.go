package openapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"slices"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/kube-openapi/pkg/validation/spec"
)

// infoJSON is the documents' title block; the version is the API's, not
// the build's, so documents only change when the types do.
const infoJSON = `{"title":"Kubernetes","version":"unversioned"}`

// writeObject writes a JSON object of pre-encoded members in key order
// (those in only, when only is not nil). Documents are assembled this way
// because encoding/json re-validates every embedded RawMessage, which
// costs more than encoding the schemas themselves.
func writeObject(buf *bytes.Buffer, members map[string]json.RawMessage, only []string) {
	keys := only
	if keys == nil {
		keys = slices.Sorted(maps.Keys(members))
	}
	buf.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			buf.WriteByte(',')
		}
		key, _ := json.Marshal(k) // a string always encodes
		buf.Write(key)
		buf.WriteByte(':')
		buf.Write(members[k])
	}
	buf.WriteByte('}')
}

// encodeDefinitions encodes each definition once; documents then splice
// these bytes instead of re-encoding shared definitions such as ObjectMeta
// for every group version. The schemas' own encoders are called directly:
// through json.Marshal their output would be re-validated for nothing.
func encodeDefinitions(defs map[string]*spec.Schema) (map[string]json.RawMessage, int, error) {
	raw := make(map[string]json.RawMessage, len(defs))
	size := 0
	for name, def := range defs {
		b, err := def.MarshalJSON()
		if err != nil {
			return nil, 0, fmt.Errorf("openapi: encoding %s: %w", name, err)
		}
		raw[name] = b
		size += len(name) + len(b) + 4
	}
	return raw, size, nil
}

func (s *schemas) encodeV2(items []pathItem) (*document, error) {
	defs, size, err := encodeDefinitions(s.v2)
	if err != nil {
		return nil, err
	}
	paths := map[string]json.RawMessage{}
	for _, p := range items {
		item := p.v2()
		b, err := item.MarshalJSON()
		if err != nil {
			return nil, fmt.Errorf("openapi: encoding %s: %w", p.path, err)
		}
		paths[p.path] = b
		size += len(p.path) + len(b) + 4
	}
	var buf bytes.Buffer
	buf.Grow(size + 128)
	buf.WriteString(`{"swagger":"2.0","info":`)
	buf.WriteString(infoJSON)
	buf.WriteString(`,"paths":`)
	writeObject(&buf, paths, nil)
	buf.WriteString(`,"definitions":`)
	writeObject(&buf, defs, nil)
	buf.WriteString("}")
	return newDocument(buf.Bytes(), v2Proto), nil
}

// encodeV3 builds the document of each group version — its paths and the
// closure of the definitions they use — and the discovery document that
// links them by content hash.
func (s *schemas) encodeV3(gvs []schema.GroupVersion, items []pathItem) (map[string]*document, *document, error) {
	defs, _, err := encodeDefinitions(s.v3)
	if err != nil {
		return nil, nil, err
	}
	docs := map[string]*document{}
	discovery := map[string]map[string]string{}
	for _, gv := range gvs {
		key := "apis/" + gv.Group + "/" + gv.Version
		if gv.Group == "" {
			key = "api/" + gv.Version
		}
		doc, err := s.encodeGroupVersion(gv, items, defs)
		if err != nil {
			return nil, nil, fmt.Errorf("openapi: encoding v3 %s: %w", gv, err)
		}
		docs[key] = doc
		u := url.URL{Path: "/openapi/v3/" + key, RawQuery: url.Values{"hash": {doc.etag}}.Encode()}
		discovery[key] = map[string]string{"serverRelativeURL": u.String()}
	}
	disc, err := json.Marshal(map[string]any{"paths": discovery})
	if err != nil {
		return nil, nil, fmt.Errorf("openapi: encoding v3 discovery: %w", err)
	}
	return docs, newDocument(disc, nil), nil
}

func (s *schemas) encodeGroupVersion(gv schema.GroupVersion, items []pathItem, defs map[string]json.RawMessage) (*document, error) {
	paths := map[string]json.RawMessage{}
	roots := map[string]bool{}
	size := 0
	for _, p := range items {
		if p.gv != gv {
			continue
		}
		b, err := p.v3().MarshalJSON()
		if err != nil {
			return nil, err
		}
		paths[p.path] = b
		size += len(p.path) + len(b) + 4
		for _, o := range p.ops {
			if o.body != "" {
				roots[o.body] = true
			}
			for _, r := range o.responses {
				roots[r.def] = true
			}
		}
	}
	names := s.closure(roots)
	for _, n := range names {
		size += len(n) + len(defs[n]) + 4
	}
	var b bytes.Buffer
	b.Grow(size + 512)
	b.WriteString(`{"openapi":"3.0.0","info":`)
	b.WriteString(infoJSON)
	b.WriteString(`,"paths":`)
	writeObject(&b, paths, nil)
	b.WriteString(`,"components":{"schemas":`)
	writeObject(&b, defs, names)
	b.WriteString(`,"securitySchemes":{"BearerToken":{"type":"apiKey","name":"authorization","in":"header","description":"Bearer Token authentication"}}}}`)
	return newDocument(b.Bytes(), v3Proto), nil
}
