package apiserver

import (
	"net/http"
	"slices"
	"sort"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/component-base/version"

	"github.com/wasmkube/wasmkube/control/registry"
)

var (
	objectVerbs     = metav1.Verbs{"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}
	subobjectVerbs  = metav1.Verbs{"get", "patch", "update"}
	legacyGroupName = ""
)

// discovery holds the documents served under /api and /apis, built once:
// the set of resources never changes while the server runs.
type discovery struct {
	coreVersions *metav1.APIVersions
	groups       *metav1.APIGroupList
	groupByName  map[string]*metav1.APIGroup
	resources    map[schema.GroupVersion]*metav1.APIResourceList
}

func newDiscovery(stores []*registry.Store) *discovery {
	d := &discovery{groupByName: map[string]*metav1.APIGroup{}, resources: map[schema.GroupVersion]*metav1.APIResourceList{}}
	var groupOrder []string
	for _, st := range stores {
		s := st.Strategy
		gv := s.Kind.GroupVersion()
		list := d.resources[gv]
		if list == nil {
			list = &metav1.APIResourceList{TypeMeta: metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"}, GroupVersion: gv.String()}
			d.resources[gv] = list
			if gv.Group != legacyGroupName && !slices.Contains(groupOrder, gv.Group) {
				groupOrder = append(groupOrder, gv.Group)
			}
		}
		list.APIResources = append(list.APIResources, apiResources(s)...)
	}
	d.coreVersions = &metav1.APIVersions{TypeMeta: metav1.TypeMeta{Kind: "APIVersions"}, Versions: []string{"v1"}}
	d.groups = &metav1.APIGroupList{TypeMeta: metav1.TypeMeta{Kind: "APIGroupList", APIVersion: "v1"}}
	for _, g := range groupOrder {
		group := metav1.APIGroup{TypeMeta: metav1.TypeMeta{Kind: "APIGroup", APIVersion: "v1"}, Name: g}
		for gv := range d.resources {
			if gv.Group == g {
				group.Versions = append(group.Versions, metav1.GroupVersionForDiscovery{GroupVersion: gv.String(), Version: gv.Version})
			}
		}
		sort.Slice(group.Versions, func(i, j int) bool { return group.Versions[i].Version > group.Versions[j].Version })
		group.PreferredVersion = group.Versions[0]
		d.groups.Groups = append(d.groups.Groups, group)
		d.groupByName[g] = &d.groups.Groups[len(d.groups.Groups)-1]
	}
	return d
}

// apiResources lists a resource and its subresources as discovery shows them.
func apiResources(s *registry.Strategy) []metav1.APIResource {
	main := metav1.APIResource{
		Name: s.Resource, SingularName: s.Singular, Namespaced: s.Namespaced, Kind: s.Kind.Kind,
		Verbs: objectVerbs, ShortNames: s.ShortNames, Categories: s.Categories,
	}
	out := []metav1.APIResource{main}
	if s.HasStatus {
		out = append(out, metav1.APIResource{Name: s.Resource + "/status", Namespaced: s.Namespaced, Kind: s.Kind.Kind, Verbs: subobjectVerbs})
	}
	if s.Scale != nil {
		out = append(out, metav1.APIResource{Name: s.Resource + "/scale", Namespaced: s.Namespaced, Group: "autoscaling", Version: "v1", Kind: "Scale", Verbs: subobjectVerbs})
	}
	for _, sr := range s.Subresources {
		r := metav1.APIResource{Name: s.Resource + "/" + sr.Name, Namespaced: s.Namespaced, Kind: sr.Kind.Kind, Verbs: sr.Verbs}
		if sr.Kind.GroupVersion() != s.Kind.GroupVersion() {
			r.Group, r.Version = sr.Kind.Group, sr.Kind.Version
		}
		out = append(out, r)
	}
	return out
}

func (d *discovery) serveCore(w http.ResponseWriter, r *http.Request, serverAddress string) {
	v := *d.coreVersions
	v.ServerAddressByClientCIDRs = []metav1.ServerAddressByClientCIDR{{ClientCIDR: "0.0.0.0/0", ServerAddress: serverAddress}}
	writeObject(w, http.StatusOK, &v, false)
}

func (d *discovery) serveGroups(w http.ResponseWriter, r *http.Request) {
	writeObject(w, http.StatusOK, d.groups, false)
}

// serveGroupOrVersion answers /apis/<group>, /apis/<group>/<version> and
// /api/v1. ok is false when the path names nothing served.
func (d *discovery) serveGroupOrVersion(w http.ResponseWriter, group, version string) bool {
	if version == "" {
		g, ok := d.groupByName[group]
		if ok {
			writeObject(w, http.StatusOK, g, false)
		}
		return ok
	}
	list, ok := d.resources[schema.GroupVersion{Group: group, Version: version}]
	if ok {
		writeObject(w, http.StatusOK, list, false)
	}
	return ok
}

func serveVersion(w http.ResponseWriter, r *http.Request) {
	info := version.Get()
	writeObject(w, http.StatusOK, &info, false)
}
