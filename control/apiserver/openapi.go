package apiserver

import (
	"fmt"

	"github.com/wasmkube/wasmkube/control/openapi"
	"github.com/wasmkube/wasmkube/control/registry"
)

// newOpenAPI generates the /openapi/v2 and /openapi/v3 documents for the
// served stores once, at start-up.
func newOpenAPI(stores []*registry.Store) (*openapi.Specs, error) {
	resources := make([]openapi.Resource, 0, len(stores))
	for _, st := range stores {
		s := st.Strategy
		var subs []string
		if s.HasStatus {
			subs = append(subs, "status")
		}
		if s.Scale != nil {
			subs = append(subs, "scale")
		}
		for _, sub := range s.Subresources {
			subs = append(subs, sub.Name)
		}
		resources = append(resources, openapi.Resource{
			GVK: s.Kind, Resource: s.Resource, Namespaced: s.Namespaced,
			New: s.New, NewList: s.NewList, Subresources: subs,
		})
	}
	specs, err := openapi.New(resources)
	if err != nil {
		return nil, fmt.Errorf("apiserver: %w", err)
	}
	return specs, nil
}
