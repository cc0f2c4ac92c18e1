package agent

import (
	"context"
	"fmt"

	"github.com/containerd/containerd"

	"github.com/wasmkube/wasmkube/runtime/images"
)

// imageStore is the node's image store as the pod worker uses it.
type imageStore struct{ client *containerd.Client }

func (s imageStore) Present(ctx context.Context, ref string) (bool, error) {
	return images.Present(ctx, s.client, ref)
}

func (s imageStore) Pull(ctx context.Context, ref string) error {
	_, err := images.Pull(ctx, s.client, ref)
	return err
}

// User is the user the image's config names, "" for none (root).
func (s imageStore) User(ctx context.Context, ref string) (string, error) {
	img, err := images.Get(ctx, s.client, ref)
	if err != nil {
		return "", err
	}
	spec, err := img.Spec(images.WithNamespace(ctx))
	if err != nil {
		return "", fmt.Errorf("config of image %s: %w", ref, err)
	}
	return spec.Config.User, nil
}
