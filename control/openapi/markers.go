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
}

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
		if len(parts) < 3 {
			return nil, fmt.Errorf("markers.txt:%d: want <definition> <field> <markers>", n+1)
		}
		fields := t[parts[0]]
		if fields == nil {
			fields = map[string]*fieldMarkers{}
			t[parts[0]] = fields
		}
		m := fields[parts[1]]
		if m == nil {
			m = &fieldMarkers{}
			fields[parts[1]] = m
		}
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

func (t markerTable) get(def, field string) *fieldMarkers {
	if m := t[def][field]; m != nil {
		return m
	}
	return &fieldMarkers{}
}
