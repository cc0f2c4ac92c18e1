package openapi

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	openapi_v2 "github.com/google/gnostic-models/openapiv2"
	"google.golang.org/protobuf/proto"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/managedfields"
	"k8s.io/kube-openapi/pkg/spec3"
	"k8s.io/kube-openapi/pkg/validation/spec"
)

// newSpecs builds the documents of the production resource set once per test.
func newSpecs(t *testing.T) *Specs {
	t.Helper()
	start := time.Now()
	s, err := New(servedResources())
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Logf("generated in %v", time.Since(start))
	return s
}

func get(t *testing.T, h http.Handler, path, accept string, header ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func coreV3(t *testing.T, s *Specs) *spec3.OpenAPI {
	t.Helper()
	rec := get(t, s.Handler(), "/openapi/v3/api/v1", "application/json")
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /openapi/v3/api/v1: %d %s", rec.Code, rec.Body)
	}
	doc := &spec3.OpenAPI{}
	if err := json.Unmarshal(rec.Body.Bytes(), doc); err != nil {
		t.Fatalf("decoding v3 api/v1: %v", err)
	}
	return doc
}

func TestPodPatchAdvertisesFieldValidation(t *testing.T) {
	doc := coreV3(t, newSpecs(t))
	item := doc.Paths.Paths["/api/v1/namespaces/{namespace}/pods/{name}"]
	if item == nil || item.Patch == nil {
		t.Fatalf("no PATCH operation for pods/{name}")
	}
	var gvk map[string]string
	if err := item.Patch.Extensions.GetObject("x-kubernetes-group-version-kind", &gvk); err != nil {
		t.Fatalf("reading GVK extension: %v", err)
	}
	if want := map[string]string{"group": "", "version": "v1", "kind": "Pod"}; !reflect.DeepEqual(gvk, want) {
		t.Errorf("GVK = %v, want %v", gvk, want)
	}
	if action, _ := item.Patch.Extensions.GetString("x-kubernetes-action"); action != "patch" {
		t.Errorf("x-kubernetes-action = %q, want patch", action)
	}
	found := map[string]bool{}
	for _, p := range item.Patch.Parameters {
		if p.In == "query" {
			found[p.Name] = true
		}
	}
	for _, name := range []string{"fieldValidation", "fieldManager", "dryRun", "force"} {
		if !found[name] {
			t.Errorf("PATCH lacks query parameter %q (has %v)", name, found)
		}
	}
	if fin := doc.Paths.Paths["/api/v1/namespaces/{name}/finalize"]; fin == nil || fin.Put == nil {
		t.Errorf("namespaces/finalize has no PUT")
	}
	if doc.Paths.Paths["/api/v1/namespaces/{namespace}/pods/{name}/binding"].Post == nil {
		t.Errorf("pods/binding has no POST")
	}
}

func TestContainerSchema(t *testing.T) {
	s := newSpecs(t)
	container := s.Schemas()["io.k8s.api.core.v1.Container"]
	if container == nil {
		t.Fatal("no io.k8s.api.core.v1.Container schema")
	}
	image := container.Properties["image"]
	if !reflect.DeepEqual([]string(image.Type), []string{"string"}) {
		t.Errorf("image type = %v, want string", image.Type)
	}
	if want := (corev1.Container{}).SwaggerDoc()["image"]; image.Description != want || want == "" {
		t.Errorf("image description = %q, want SwaggerDoc's %q", image.Description, want)
	}
	if !reflect.DeepEqual(container.Required, []string{"name"}) {
		t.Errorf("Container required = %v, want [name]", container.Required)
	}

	podSpec := s.Schemas()["io.k8s.api.core.v1.PodSpec"]
	checkList(t, podSpec.Properties["containers"], "name", []any{"name"})
	checkList(t, container.Properties["ports"], "containerPort", []any{"containerPort", "protocol"})
	if d := s.Schemas()["io.k8s.api.core.v1.ContainerPort"].Properties["protocol"].Default; d != "TCP" {
		t.Errorf("ContainerPort.protocol default = %v, want TCP (a list map key must have one)", d)
	}

	pod := s.Schemas()["io.k8s.api.core.v1.Pod"]
	var gvks []map[string]string
	if err := pod.Extensions.GetObject("x-kubernetes-group-version-kind", &gvks); err != nil || len(gvks) != 1 || gvks[0]["kind"] != "Pod" {
		t.Errorf("Pod GVK extension = %v (%v)", gvks, err)
	}
	if ref := pod.Properties["metadata"].AllOf; len(ref) != 1 || ref[0].Ref.String() != v3RefPrefix+"io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta" {
		t.Errorf("Pod.metadata = %+v, want allOf ObjectMeta", pod.Properties["metadata"])
	}
	for name, want := range map[string][2]string{
		"io.k8s.apimachinery.pkg.apis.meta.v1.Time":      {"string", "date-time"},
		"io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime": {"string", "date-time"},
	} {
		if got := s.Schemas()[name]; got == nil || len(got.Type) != 1 || got.Type[0] != want[0] || got.Format != want[1] {
			t.Errorf("%s = %+v, want %v", name, got, want)
		}
	}
	// Hand-written types have no SwaggerDoc; their comments stand in.
	if d := s.Schemas()["io.k8s.apimachinery.pkg.apis.meta.v1.Time"].Description; !strings.HasPrefix(d, "Time is a wrapper around time.Time") {
		t.Errorf("Time description = %q", d)
	}
	ios := s.Schemas()["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]
	if v, _ := ios.Extensions.GetBool("x-kubernetes-int-or-string"); !v || ios.Format != "int-or-string" {
		t.Errorf("IntOrString = %+v", ios)
	}
	limits := s.Schemas()["io.k8s.api.core.v1.ResourceRequirements"].Properties["limits"]
	if limits.AdditionalProperties == nil || limits.AdditionalProperties.Schema.Ref.String() != v3RefPrefix+"io.k8s.apimachinery.pkg.api.resource.Quantity" {
		t.Errorf("ResourceRequirements.limits = %+v, want a map of Quantity", limits)
	}
}

func checkList(t *testing.T, p spec.Schema, mergeKey string, keys []any) {
	t.Helper()
	if got, _ := p.Extensions.GetString("x-kubernetes-patch-merge-key"); got != mergeKey {
		t.Errorf("patch merge key = %q, want %q", got, mergeKey)
	}
	if got, _ := p.Extensions.GetString("x-kubernetes-patch-strategy"); got != "merge" {
		t.Errorf("patch strategy = %q, want merge", got)
	}
	if got, _ := p.Extensions.GetString("x-kubernetes-list-type"); got != "map" {
		t.Errorf("list type = %q, want map", got)
	}
	if got := p.Extensions["x-kubernetes-list-map-keys"]; !reflect.DeepEqual(toAny(got), keys) {
		t.Errorf("list map keys = %v, want %v", got, keys)
	}
}

func toAny(v any) []any {
	if ss, ok := v.([]string); ok {
		out := make([]any, len(ss))
		for i, s := range ss {
			out[i] = s
		}
		return out
	}
	out, _ := v.([]any)
	return out
}

func TestV2ProtobufDecodes(t *testing.T) {
	s := newSpecs(t)
	rec := get(t, s.Handler(), "/openapi/v2", "application/com.github.proto-openapi.spec.v2@v1.0+protobuf")
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/com.github.proto-openapi.spec.v2.v1.0+protobuf" {
		t.Fatalf("GET /openapi/v2 protobuf: %d %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	doc := &openapi_v2.Document{}
	if err := proto.Unmarshal(rec.Body.Bytes(), doc); err != nil {
		t.Fatalf("decoding protobuf: %v", err)
	}
	found := false
	for _, d := range doc.GetDefinitions().GetAdditionalProperties() {
		if d.Name == "io.k8s.api.apps.v1.Deployment" {
			found = true
		}
	}
	if !found || doc.Swagger != "2.0" {
		t.Errorf("protobuf document lacks the Deployment definition (swagger %q)", doc.Swagger)
	}
	js := get(t, s.Handler(), "/openapi/v2", "application/json")
	var v2 spec.Swagger
	if err := json.Unmarshal(js.Body.Bytes(), &v2); err != nil {
		t.Fatalf("decoding v2 JSON: %v", err)
	}
	if v2.Paths.Paths["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"].Patch == nil {
		t.Errorf("v2 lacks deployments/scale PATCH")
	}
	if js.Header().Get("Etag") != rec.Header().Get("Etag") {
		t.Errorf("JSON and protobuf ETags differ; upstream shares one under Vary: Accept")
	}
}

// TestServerSideApplyAcceptsSchemas is what server-side apply will do with
// the schemas: build a type converter and type real objects.
func TestServerSideApplyAcceptsSchemas(t *testing.T) {
	s := newSpecs(t)
	tc, err := managedfields.NewTypeConverter(s.Schemas(), false)
	if err != nil {
		t.Fatalf("NewTypeConverter: %v", err)
	}
	// DNS serves port 53 over both protocols: keyed by containerPort alone
	// this list would hold a duplicate key.
	pod := &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: "dns", Labels: map[string]string{"a": "b"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "dns", Image: "coredns",
			Ports: []corev1.ContainerPort{{ContainerPort: 53, Protocol: corev1.ProtocolUDP}, {ContainerPort: 53, Protocol: corev1.ProtocolTCP}},
		}}},
	}
	tv, err := tc.ObjectToTyped(pod)
	if err != nil {
		t.Fatalf("ObjectToTyped(pod): %v", err)
	}
	set, err := tv.ToFieldSet()
	if err != nil {
		t.Fatalf("ToFieldSet: %v", err)
	}
	if fields := set.String(); !strings.Contains(fields, `ports[containerPort=53,protocol="UDP"]`) {
		t.Errorf("field set does not key ports by containerPort and protocol:\n%s", fields)
	}
	for _, r := range servedResources() {
		obj := r.New()
		obj.GetObjectKind().SetGroupVersionKind(r.GVK)
		if _, err := tc.ObjectToTyped(obj); err != nil {
			t.Errorf("ObjectToTyped(%s): %v", r.GVK, err)
		}
	}
	dup := pod.DeepCopy()
	dup.Spec.Containers = append(dup.Spec.Containers, dup.Spec.Containers[0])
	if _, err := tc.ObjectToTyped(dup); err == nil {
		t.Errorf("two containers with one name were accepted; containers must be keyed by name")
	}
}

func TestCachingHeaders(t *testing.T) {
	s := newSpecs(t)
	h := s.Handler()
	rec := get(t, h, "/openapi/v3", "")
	var disc struct {
		Paths map[string]struct {
			ServerRelativeURL string `json:"serverRelativeURL"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &disc); err != nil {
		t.Fatalf("decoding discovery: %v", err)
	}
	u := disc.Paths["apis/apps/v1"].ServerRelativeURL
	if !strings.HasPrefix(u, "/openapi/v3/apis/apps/v1?hash=") || rec.Header().Get("Etag") == "" {
		t.Fatalf("discovery entry %q, etag %q", u, rec.Header().Get("Etag"))
	}
	doc := get(t, h, u, "application/json")
	if doc.Code != http.StatusOK || doc.Header().Get("Cache-Control") != "public, immutable" || doc.Header().Get("Expires") == "" {
		t.Errorf("hashed GET: %d, headers %v", doc.Code, doc.Header())
	}
	if etag := doc.Header().Get("Etag"); !strings.Contains(u, strings.Trim(etag, `"`)) {
		t.Errorf("ETag %s does not match the discovery hash in %s", etag, u)
	}
	if stale := get(t, h, "/openapi/v3/apis/apps/v1?hash=0", ""); stale.Code != http.StatusMovedPermanently || stale.Header().Get("Location") != u {
		t.Errorf("stale hash: %d to %q, want 301 to %q", stale.Code, stale.Header().Get("Location"), u)
	}
	if nm := get(t, h, "/openapi/v3/apis/apps/v1", "application/json", "If-None-Match", doc.Header().Get("Etag")); nm.Code != http.StatusNotModified {
		t.Errorf("If-None-Match: %d, want 304", nm.Code)
	}
	if nf := get(t, h, "/openapi/v3/apis/nothing/v1", ""); nf.Code != http.StatusNotFound {
		t.Errorf("unknown group version: %d, want 404", nf.Code)
	}
	if na := get(t, h, "/openapi/v2", "text/html"); na.Code != http.StatusNotAcceptable {
		t.Errorf("Accept text/html: %d, want 406", na.Code)
	}
}
