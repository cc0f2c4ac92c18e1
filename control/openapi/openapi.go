package openapi

import (
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"maps"
	"reflect"
	"strings"
	"sync"
	"time"

	openapi_v2 "github.com/google/gnostic-models/openapiv2"
	openapi_v3 "github.com/google/gnostic-models/openapiv3"
	"google.golang.org/protobuf/proto"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/kube-openapi/pkg/validation/spec"
)

// Resource describes one served resource.
type Resource struct {
	GVK        schema.GroupVersionKind
	Resource   string // plural
	Namespaced bool
	New        func() runtime.Object // a zero object of the kind
	// NewList returns a zero list of the kind; when nil, list operations are
	// described with the generic metav1.List.
	NewList      func() runtime.Object
	Subresources []string // "status", "scale", "binding", ...
}

// Specs are the generated documents, encoded once. A Specs is immutable
// and safe for concurrent use.
type Specs struct {
	v2        *document
	v3        map[string]*document // by discovery path: "api/v1", "apis/apps/v1"
	discovery *document
	schemas   map[string]*spec.Schema
	built     time.Time
}

// document is one served document. The JSON form is encoded in New; the
// protobuf form is converted from it on first request, once.
type document struct {
	json    []byte
	etag    string
	toProto func([]byte) ([]byte, error)

	protoOnce sync.Once
	proto     []byte
	protoErr  error
}

func newDocument(b []byte, toProto func([]byte) ([]byte, error)) *document {
	sum := sha512.Sum512(b)
	return &document{json: b, etag: strings.ToUpper(hex.EncodeToString(sum[:])), toProto: toProto}
}

func (d *document) protobuf() ([]byte, error) {
	d.protoOnce.Do(func() { d.proto, d.protoErr = d.toProto(d.json) })
	return d.proto, d.protoErr
}

func v2Proto(b []byte) ([]byte, error) {
	doc, err := openapi_v2.ParseDocument(b)
	if err != nil {
		return nil, fmt.Errorf("openapi: converting v2 to protobuf: %w", err)
	}
	return proto.Marshal(doc)
}

func v3Proto(b []byte) ([]byte, error) {
	doc, err := openapi_v3.ParseDocument(b)
	if err != nil {
		return nil, fmt.Errorf("openapi: converting v3 to protobuf: %w", err)
	}
	return proto.Marshal(doc)
}

// New builds every document once; it is immutable afterwards.
func New(resources []Resource) (*Specs, error) {
	markers, err := parseMarkers(markersText)
	if err != nil {
		return nil, fmt.Errorf("openapi: %w", err)
	}
	s := newSchemas(markers)
	q := newQueryParams()
	var items []pathItem
	var gvs []schema.GroupVersion
	seenGV := map[schema.GroupVersion]bool{}
	for _, r := range resources {
		kind, list, err := s.defineResource(r)
		if err != nil {
			return nil, err
		}
		paths, err := s.resourcePaths(r, kind, list, q)
		if err != nil {
			return nil, fmt.Errorf("openapi: %s: %w", r.GVK, err)
		}
		items = append(items, paths...)
		if gv := r.GVK.GroupVersion(); !seenGV[gv] {
			seenGV[gv] = true
			gvs = append(gvs, gv)
		}
	}
	if err := s.defineMeta(gvs); err != nil {
		return nil, err
	}
	s.finish()

	specs := &Specs{schemas: s.v3, built: time.Now()}
	// The two dialects share nothing mutable, so they are encoded in
	// parallel: encoding is nearly all of New's cost.
	var v2Err error
	done := make(chan struct{})
	go func() {
		defer close(done)
		specs.v2, v2Err = s.encodeV2(items)
	}()
	specs.v3, specs.discovery, err = s.encodeV3(gvs, items)
	<-done
	if err != nil {
		return nil, err
	}
	if v2Err != nil {
		return nil, v2Err
	}
	return specs, nil
}

// defineResource defines a resource's kind and list and tags them with
// their group version kinds.
func (s *schemas) defineResource(r Resource) (kind, list string, err error) {
	if r.New == nil {
		return "", "", fmt.Errorf("openapi: %s has no New", r.GVK)
	}
	kind, err = s.define(reflect.TypeOf(r.New()).Elem())
	if err != nil {
		return "", "", err
	}
	s.addGVK(kind, r.GVK)
	var listObj any = &metav1.List{}
	if r.NewList != nil {
		listObj = r.NewList()
	}
	list, err = s.define(reflect.TypeOf(listObj).Elem())
	if err != nil {
		return "", "", err
	}
	if r.NewList != nil {
		s.addGVK(list, r.GVK.GroupVersion().WithKind(r.GVK.Kind+"List"))
	}
	return kind, list, nil
}

// Schemas exposes the v3 component schemas of every served definition, for
// server-side apply's type converter. Callers must not modify the schemas.
func (s *Specs) Schemas() map[string]*spec.Schema { return maps.Clone(s.schemas) }
