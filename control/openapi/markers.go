package openapi

//go:generate go run gen_markers.go

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"strings"
)

//go:embed markers.txt
var markersText string

// fieldMarkers are the source markers of one field (or, under the field
// name "-", of the type itself).
type fieldMarkers struct {
	listType    string
	listMapKeys []string
	mapType     string
	structType  string
	optional    bool
	// def is the +default value when it is a JSON literal; upstream's
	// ref(Constant) form names a Go constant we cannot resolve here.
	def    any
	hasDef bool
	// description documents, under "-", a type without a SwaggerDoc.
	description string
	// enum lists the values of an +enum type, under the field name "=".
	enum []enumValue
}

type enumValue struct{ value, desc string }

// markerTable maps definition name → field json name → markers.
type markerTable map[string]map[string]*fieldMarkers

// parseMarkers reads markers.txt. It is parsed per New call rather than held
// in a package variable so that nothing outside a Specs value is mutable.
func parseMarkers(text string) (markerTable, error) {
	t := markerTable{}
	for n, line := range strings.Split(text, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		parts := strings.Fields(line)
		if len(parts) >= 3 && parts[1] == "description" {
			_, text, _ := strings.Cut(strings.SplitN(line, " ", 2)[1], " ")
			m := t.entry(parts[0], "-")
			if err := json.Unmarshal([]byte(text), &m.description); err != nil {
				return nil, fmt.Errorf("markers.txt:%d: description: %w", n+1, err)
			}
			continue
		}
		if len(parts) >= 3 && parts[1] == "=" {
			var v string
			if err := json.Unmarshal([]byte(parts[2]), &v); err != nil {
				return nil, fmt.Errorf("markers.txt:%d: enum value: %w", n+1, err)
			}
			m := t.entry(parts[0], "=")
			m.enum = append(m.enum, enumValue{v, strings.Join(parts[3:], " ")})
			continue
		}
		if len(parts) < 3 {
			return nil, fmt.Errorf("markers.txt:%d: want <definition> <field> <markers>", n+1)
		}
		m := t.entry(parts[0], parts[1])
		for _, kv := range parts[2:] {
			k, v, _ := strings.Cut(kv, "=")
			switch k {
			case "listType":
				m.listType = v
			case "listMapKey":
				m.listMapKeys = append(m.listMapKeys, v)
			case "mapType":
				m.mapType = v
			case "structType":
				m.structType = v
			case "optional":
				m.optional = true
			case "default":
				var d any
				if err := json.Unmarshal([]byte(v), &d); err == nil {
					m.def, m.hasDef = d, true
				}
			default:
				return nil, fmt.Errorf("markers.txt:%d: unknown marker %q", n+1, k)
			}
		}
	}
	return t, nil
}

func (t markerTable) entry(def, field string) *fieldMarkers {
	fields := t[def]
	if fields == nil {
		fields = map[string]*fieldMarkers{}
		t[def] = fields
	}
	m := fields[field]
	if m == nil {
		m = &fieldMarkers{}
		fields[field] = m
	}
	return m
}

func (t markerTable) get(def, field string) *fieldMarkers {
	if m := t[def][field]; m != nil {
		return m
	}
	return &fieldMarkers{}
}
