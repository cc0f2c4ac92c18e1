package server

import (
	"context"

	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/wasmkube/wasmkube/control/registry"
)

// listStorageClasses reads every StorageClass from the store's cache.
func listStorageClasses(ctx context.Context, classes *registry.Store) ([]*storagev1.StorageClass, error) {
	if classes == nil {
		return nil, nil
	}
	obj, err := classes.List(ctx, "", &metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	list := obj.(*storagev1.StorageClassList)
	out := make([]*storagev1.StorageClass, len(list.Items))
	for i := range list.Items {
		out[i] = &list.Items[i]
	}
	return out, nil
}
