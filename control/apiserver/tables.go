package apiserver

import (
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

var (
	tableTypeMeta    = metav1.TypeMeta{Kind: "Table", APIVersion: "meta.k8s.io/v1"}
	partialTypeMeta  = metav1.TypeMeta{Kind: "PartialObjectMetadata", APIVersion: "meta.k8s.io/v1"}
	partialListMeta  = metav1.TypeMeta{Kind: "PartialObjectMetadataList", APIVersion: "meta.k8s.io/v1"}
	includeMetadata  = metav1.IncludeMetadata
	includeObjectKey = "includeObject"
)

// toTable renders an object or a list as a meta.k8s.io Table. Each row
// carries the object as asked by includeObject (metadata only by default),
// which kubectl uses for labels and names.
func (h *request) toTable(obj runtime.Object) (*metav1.Table, error) {
	table, err := h.printers.ToTable(obj)
	if err != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("building table: %w", err))
	}
	table.TypeMeta = tableTypeMeta
	include := metav1.IncludeObjectPolicy(h.query.Get(includeObjectKey))
	if include == "" {
		include = includeMetadata
	}
	items := []runtime.Object{obj}
	if meta.IsListType(obj) {
		if items, err = meta.ExtractList(obj); err != nil {
			return nil, apierrors.NewInternalError(err)
		}
		if lm, err := meta.ListAccessor(obj); err == nil {
			table.ResourceVersion = lm.GetResourceVersion()
			table.Continue = lm.GetContinue()
			table.RemainingItemCount = lm.GetRemainingItemCount()
		}
	} else if m, err := meta.Accessor(obj); err == nil {
		table.ResourceVersion = m.GetResourceVersion()
	}
	if len(items) != len(table.Rows) {
		return nil, apierrors.NewInternalError(fmt.Errorf("table has %d rows for %d objects", len(table.Rows), len(items)))
	}
	for i := range table.Rows {
		switch include {
		case metav1.IncludeObject:
			table.Rows[i].Object.Object = items[i]
		case metav1.IncludeMetadata:
			p, err := partialMetadata(items[i])
			if err != nil {
				return nil, err
			}
			table.Rows[i].Object.Object = p
		}
	}
	return table, nil
}

func partialMetadata(obj runtime.Object) (*metav1.PartialObjectMetadata, error) {
	accessor, ok := obj.(metav1.ObjectMetaAccessor)
	if !ok {
		return nil, apierrors.NewInternalError(fmt.Errorf("%T has no object metadata", obj))
	}
	m, ok := accessor.GetObjectMeta().(*metav1.ObjectMeta)
	if !ok {
		return nil, apierrors.NewInternalError(fmt.Errorf("%T has no standard object metadata", obj))
	}
	return &metav1.PartialObjectMetadata{TypeMeta: partialTypeMeta, ObjectMeta: *m.DeepCopy()}, nil
}

// toMetadata answers PartialObjectMetadata(List), which the metadata-only
// informers of controllers ask for.
func toMetadata(obj runtime.Object) (runtime.Object, error) {
	if !meta.IsListType(obj) {
		return partialMetadata(obj)
	}
	items, err := meta.ExtractList(obj)
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	list := &metav1.PartialObjectMetadataList{TypeMeta: partialListMeta}
	if lm, err := meta.ListAccessor(obj); err == nil {
		list.ResourceVersion, list.Continue = lm.GetResourceVersion(), lm.GetContinue()
		list.RemainingItemCount = lm.GetRemainingItemCount()
	}
	list.Items = make([]metav1.PartialObjectMetadata, 0, len(items))
	for _, item := range items {
		p, err := partialMetadata(item)
		if err != nil {
			return nil, err
		}
		list.Items = append(list.Items, *p)
	}
	return list, nil
}
