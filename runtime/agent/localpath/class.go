package localpath

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

const (
	// ProvisionerName is the provisioner of the local-path class.
	ProvisionerName = "wasmkube.io/local-path"
	// ClassName is the StorageClass served by every node's provisioner.
	ClassName = "local-path"
)

// annIsDefaultClass marks the cluster's default StorageClass.
const annIsDefaultClass = "storageclass.kubernetes.io/is-default-class"

// Class is the local-path StorageClass: the default class, volumes made
// once a pod's node is known, deleted with their claim.
func Class() *storagev1.StorageClass {
	reclaim := corev1.PersistentVolumeReclaimDelete
	binding := storagev1.VolumeBindingWaitForFirstConsumer
	return &storagev1.StorageClass{
		ObjectMeta: metav1.ObjectMeta{
			Name:        ClassName,
			Annotations: map[string]string{annIsDefaultClass: "true"},
		},
		Provisioner:       ProvisionerName,
		ReclaimPolicy:     &reclaim,
		VolumeBindingMode: &binding,
	}
}

// EnsureClass creates the local-path class unless it exists. An existing
// class is left as it is: an administrator may have changed it (for
// instance made another class the default).
func EnsureClass(ctx context.Context, client kubernetes.Interface) error {
	_, err := client.StorageV1().StorageClasses().Create(ctx, Class(), metav1.CreateOptions{})
	if err == nil || apierrors.IsAlreadyExists(err) {
		return nil
	}
	return fmt.Errorf("creating StorageClass %s: %w", ClassName, err)
}
