package openapi

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/kube-openapi/pkg/validation/spec"
)

const (
	v2RefPrefix = "#/definitions/"
	v3RefPrefix = "#/components/schemas/"
)

// schemas holds every definition in both dialects. v2 references siblings
// with plain $ref; v3 wraps references that carry a description in allOf,
// because OpenAPI 3.0 ignores the siblings of a $ref.
type schemas struct {
	markers markerTable
	v2, v3  map[string]*spec.Schema
	types   map[reflect.Type]string
	// deps lists the definitions each definition references directly, so a
	// group version's document can carry just the closure it needs.
	deps map[string]map[string]bool
	gvks map[string][]schema.GroupVersionKind
}

func newSchemas(markers markerTable) *schemas {
	return &schemas{
		markers: markers,
		v2:      map[string]*spec.Schema{},
		v3:      map[string]*spec.Schema{},
		types:   map[reflect.Type]string{},
		deps:    map[string]map[string]bool{},
		gvks:    map[string][]schema.GroupVersionKind{},
	}
}

// definitionName is upstream's name for a Go type: the package path with its
// leading domain reversed ("k8s.io/api/core/v1" → "io.k8s.api.core.v1"),
// then the type name.
func definitionName(t reflect.Type) string {
	pkg := t.PkgPath()
	domain, rest, _ := strings.Cut(pkg, "/")
	labels := strings.Split(domain, ".")
	for i, j := 0, len(labels)-1; i < j; i, j = i+1, j-1 {
		labels[i], labels[j] = labels[j], labels[i]
	}
	name := strings.Join(labels, ".")
	if rest != "" {
		name += "." + strings.ReplaceAll(rest, "/", ".")
	}
	return name + "." + t.Name()
}

// The interfaces apimachinery's hand-encoded types implement to describe
// their JSON form; upstream's generator honours the same methods.
type (
	openAPITyper interface {
		OpenAPISchemaType() []string
		OpenAPISchemaFormat() string
	}
	openAPIV3OneOfTyper interface{ OpenAPIV3OneOfTypes() []string }
	swaggerDocer        interface{ SwaggerDoc() map[string]string }
)

var (
	typerType   = reflect.TypeFor[openAPITyper]()
	oneOfType   = reflect.TypeFor[openAPIV3OneOfTyper]()
	swaggerType = reflect.TypeFor[swaggerDocer]()
)

func swaggerDoc(t reflect.Type) map[string]string {
	switch {
	case t.Implements(swaggerType):
		return reflect.Zero(t).Interface().(swaggerDocer).SwaggerDoc()
	case reflect.PointerTo(t).Implements(swaggerType):
		return reflect.New(t).Interface().(swaggerDocer).SwaggerDoc()
	}
	return nil
}

// addGVK marks a definition as the schema of a top-level kind.
func (s *schemas) addGVK(name string, gvk schema.GroupVersionKind) {
	for _, have := range s.gvks[name] {
		if have == gvk {
			return
		}
	}
	s.gvks[name] = append(s.gvks[name], gvk)
}

// define makes sure the named Go type has a definition and returns its name.
func (s *schemas) define(t reflect.Type) (string, error) {
	if name, ok := s.types[t]; ok {
		return name, nil
	}
	if t.Name() == "" || t.PkgPath() == "" {
		return "", fmt.Errorf("openapi: cannot define unnamed type %s", t)
	}
	name := definitionName(t)
	// Registered before the fields are walked so that recursive types
	// terminate on the reference.
	s.types[t] = name
	v2, v3 := &spec.Schema{}, &spec.Schema{}
	s.v2[name], s.v3[name] = v2, v3
	deps := map[string]bool{}
	s.deps[name] = deps
	doc := swaggerDoc(t)[""]
	if doc == "" {
		doc = s.markers.get(name, "-").description
	}

	if t.Implements(typerType) {
		typer := reflect.Zero(t).Interface().(openAPITyper)
		v2.Description, v2.Type, v2.Format = doc, typer.OpenAPISchemaType(), typer.OpenAPISchemaFormat()
		*v3 = *v2
		v3.VendorExtensible = spec.VendorExtensible{Extensions: maps.Clone(v2.Extensions)}
		if t.Implements(oneOfType) {
			v3.Type = nil
			for _, typ := range reflect.Zero(t).Interface().(openAPIV3OneOfTyper).OpenAPIV3OneOfTypes() {
				v3.OneOf = append(v3.OneOf, spec.Schema{SchemaProps: spec.SchemaProps{Type: []string{typ}}})
			}
			if v2.Format == "int-or-string" {
				v3.AddExtension("x-kubernetes-int-or-string", true)
			}
		}
		return name, nil
	}
	if t.Kind() != reflect.Struct {
		return "", fmt.Errorf("openapi: %s is neither a struct nor self-describing", t)
	}
	v2.Description = doc
	v2.Type = []string{"object"}
	if m := s.markers.get(name, "-"); m.structType == "atomic" {
		v2.AddExtension("x-kubernetes-map-type", "atomic")
	}
	var required []string
	if err := s.addFields(t, v2, v3, deps, &required); err != nil {
		return "", fmt.Errorf("openapi: %s: %w", name, err)
	}
	sort.Strings(required)
	v2.Required = required
	v3.SchemaProps.Description, v3.SchemaProps.Type, v3.SchemaProps.Required = v2.Description, v2.Type, v2.Required
	v3.VendorExtensible = spec.VendorExtensible{Extensions: maps.Clone(v2.Extensions)}
	return name, nil
}

// addFields adds the JSON fields of struct t, flattening inlined structs, to
// the object schemas v2 and v3.
func (s *schemas) addFields(t reflect.Type, v2, v3 *spec.Schema, deps map[string]bool, required *[]string) error {
	docs := swaggerDoc(t)
	declaring := definitionName(t)
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if strings.Contains(opts, "inline") || (f.Anonymous && name == "") {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				if err := s.addFields(ft, v2, v3, deps, required); err != nil {
					return err
				}
				continue
			}
		}
		if name == "" {
			name = f.Name
		}
		p2, p3, err := s.use(f.Type, deps)
		if err != nil {
			return fmt.Errorf("field %s: %w", f.Name, err)
		}
		m := s.markers.get(declaring, name)
		p2.Description = docs[name]
		s.addEnum(&p2, f.Type)
		s.addEnum(&p3, f.Type) // for the values; the description is copied below
		if m.hasDef {
			p2.Default = m.def
		}
		s.fieldExtensions(&p2, f, m)
		if p3.Ref.String() != "" {
			// A described reference must be wrapped: siblings of $ref are
			// ignored in OpenAPI 3.0.
			p3 = spec.Schema{SchemaProps: spec.SchemaProps{AllOf: []spec.Schema{p3}}}
		}
		p3.Description, p3.Default, p3.VendorExtensible = p2.Description, p2.Default, p2.VendorExtensible
		if v2.Properties == nil {
			v2.Properties, v3.Properties = map[string]spec.Schema{}, map[string]spec.Schema{}
		}
		v2.Properties[name], v3.Properties[name] = p2, p3
		if !strings.Contains(opts, "omitempty") && !m.optional {
			*required = append(*required, name)
		}
	}
	return nil
}

// addEnum lists the allowed values of an +enum typed field (or of its
// items) and explains them in the description, as upstream does.
func (s *schemas) addEnum(p *spec.Schema, t reflect.Type) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	target := p
	if t.Kind() == reflect.Slice && p.Items != nil && p.Items.Schema != nil {
		t, target = t.Elem(), p.Items.Schema
	}
	if t.Kind() != reflect.String || t.Name() == "" || t.PkgPath() == "" {
		return
	}
	values := s.markers.get(definitionName(t), "=").enum
	if len(values) == 0 {
		return
	}
	sorted := slices.SortedFunc(slices.Values(values), func(a, b enumValue) int { return strings.Compare(a.value, b.value) })
	var desc strings.Builder
	desc.WriteString(p.Description)
	desc.WriteString("\n\nPossible enum values:")
	for _, v := range sorted {
		target.Enum = append(target.Enum, v.value)
		fmt.Fprintf(&desc, "\n - `%q`", v.value)
		if v.desc != "" {
			desc.WriteString(" " + v.desc)
		}
	}
	p.Description = desc.String()
}

// fieldExtensions carries the strategic merge patch tags and the source
// markers onto a property. Lists with a merge key but no +listType marker
// become maps keyed by the merge key, which is how server-side apply reads
// such lists anyway.
func (s *schemas) fieldExtensions(p *spec.Schema, f reflect.StructField, m *fieldMarkers) {
	strategy, key := f.Tag.Get("patchStrategy"), f.Tag.Get("patchMergeKey")
	if strategy != "" {
		p.AddExtension("x-kubernetes-patch-strategy", strategy)
	}
	if key != "" {
		p.AddExtension("x-kubernetes-patch-merge-key", key)
	}
	listType, keys := m.listType, m.listMapKeys
	isList := len(p.Type) == 1 && p.Type[0] == "array"
	if listType == "" && isList && key != "" && strings.Contains(strategy, "merge") {
		listType, keys = "map", []string{key}
	}
	if listType != "" && isList {
		p.AddExtension("x-kubernetes-list-type", listType)
		if listType == "map" {
			p.AddExtension("x-kubernetes-list-map-keys", keys)
		}
	}
	if m.mapType != "" {
		p.AddExtension("x-kubernetes-map-type", m.mapType)
	}
	if m.structType != "" {
		p.AddExtension("x-kubernetes-map-type", m.structType)
	}
}

// use returns the schema of a field or element of type t in both dialects.
func (s *schemas) use(t reflect.Type, deps map[string]bool) (v2, v3 spec.Schema, err error) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Implements(typerType) || (t.Kind() == reflect.Struct && t.Name() != "") {
		name, err := s.define(t)
		if err != nil {
			return v2, v3, err
		}
		deps[name] = true
		return refSchema(v2RefPrefix + name), refSchema(v3RefPrefix + name), nil
	}
	switch t.Kind() {
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return scalar("string", "byte"), scalar("string", "byte"), nil
		}
		i2, i3, err := s.use(t.Elem(), deps)
		if err != nil {
			return v2, v3, err
		}
		return arrayOf(i2), arrayOf(i3), nil
	case reflect.Map:
		e2, e3, err := s.use(t.Elem(), deps)
		if err != nil {
			return v2, v3, err
		}
		return mapOf(e2), mapOf(e3), nil
	case reflect.String:
		return scalar("string", ""), scalar("string", ""), nil
	case reflect.Bool:
		return scalar("boolean", ""), scalar("boolean", ""), nil
	case reflect.Int8, reflect.Int16, reflect.Int32, reflect.Uint8, reflect.Uint16, reflect.Int, reflect.Uint:
		return scalar("integer", "int32"), scalar("integer", "int32"), nil
	case reflect.Int64, reflect.Uint32, reflect.Uint64:
		return scalar("integer", "int64"), scalar("integer", "int64"), nil
	case reflect.Float32:
		return scalar("number", "float"), scalar("number", "float"), nil
	case reflect.Float64:
		return scalar("number", "double"), scalar("number", "double"), nil
	case reflect.Interface:
		// Any JSON value; upstream describes embedded objects this way too.
		return spec.Schema{}, spec.Schema{}, nil
	case reflect.Struct:
		obj := scalar("object", "")
		return obj, obj, nil
	}
	return v2, v3, fmt.Errorf("unsupported type %s", t)
}

func refSchema(ref string) spec.Schema {
	return spec.Schema{SchemaProps: spec.SchemaProps{Ref: spec.MustCreateRef(ref)}}
}

func scalar(typ, format string) spec.Schema {
	return spec.Schema{SchemaProps: spec.SchemaProps{Type: []string{typ}, Format: format}}
}

func arrayOf(items spec.Schema) spec.Schema {
	s := scalar("array", "")
	s.Items = &spec.SchemaOrArray{Schema: &items}
	return s
}

func mapOf(elem spec.Schema) spec.Schema {
	s := scalar("object", "")
	s.AdditionalProperties = &spec.SchemaOrBool{Allows: true, Schema: &elem}
	return s
}

// finish attaches the group version kinds collected while paths were built.
// Upstream lists them as an array so one definition can serve several
// kinds, as DeleteOptions does for every group.
func (s *schemas) finish() {
	for name, gvks := range s.gvks {
		sort.Slice(gvks, func(i, j int) bool { return gvks[i].String() < gvks[j].String() })
		list := make([]any, 0, len(gvks))
		for _, gvk := range gvks {
			list = append(list, map[string]any{"group": gvk.Group, "version": gvk.Version, "kind": gvk.Kind})
		}
		s.v2[name].AddExtension("x-kubernetes-group-version-kind", list)
		s.v3[name].AddExtension("x-kubernetes-group-version-kind", list)
	}
}

// closure returns the named definitions and everything they reference.
func (s *schemas) closure(roots map[string]bool) []string {
	seen := map[string]bool{}
	var visit func(string)
	visit = func(n string) {
		if seen[n] {
			return
		}
		seen[n] = true
		for d := range s.deps[n] {
			visit(d)
		}
	}
	for r := range roots {
		visit(r)
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
