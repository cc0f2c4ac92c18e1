package agent

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/wasmkube/wasmkube/runtime/agent/localpath"
)

// startLocalPath runs the node's local-path provisioner, whose volumes
// live under DIR/storage.
func startLocalPath(ctx context.Context, wg *sync.WaitGroup, client kubernetes.Interface, nodeName, dir string, log *slog.Logger) error {
	prov, err := localpath.New(localpath.Config{
		Client: client, NodeName: nodeName, Dir: filepath.Join(dir, "storage"), Log: log,
	})
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	wg.Go(func() {
		if err := prov.Run(ctx); err != nil && ctx.Err() == nil {
			log.Error("agent: local-path provisioner stopped", "err", err)
		}
	})
	return nil
}

// PersistentVolumeClaim and PersistentVolume are read through the same
// short-lived cache as ConfigMaps and Secrets: a pod's claims are read on
// each of its syncs.
func (o *objects) PersistentVolumeClaim(ctx context.Context, namespace, name string) (*corev1.PersistentVolumeClaim, error) {
	obj, err := o.get("pvc/"+namespace+"/"+name, func() (any, error) {
		return o.client.CoreV1().PersistentVolumeClaims(namespace).Get(ctx, name, metav1.GetOptions{})
	})
	if err != nil {
		return nil, err
	}
	return obj.(*corev1.PersistentVolumeClaim), nil
}

func (o *objects) PersistentVolume(ctx context.Context, name string) (*corev1.PersistentVolume, error) {
	obj, err := o.get("pv/"+name, func() (any, error) {
		return o.client.CoreV1().PersistentVolumes().Get(ctx, name, metav1.GetOptions{})
	})
	if err != nil {
		return nil, err
	}
	return obj.(*corev1.PersistentVolume), nil
}
