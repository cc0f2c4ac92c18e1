package agent

import (
	"context"
	"os"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/wasmkube/wasmkube/runtime/agent/pods"
)

type tmpVolumes struct{ dir string }

func newVolumes(dir string, _ *objects) *tmpVolumes { return &tmpVolumes{dir: dir} }

func (v *tmpVolumes) Setup(ctx context.Context, pod *corev1.Pod) (map[string]pods.Mount, error) {
	out := map[string]pods.Mount{}
	for _, vol := range pod.Spec.Volumes {
		p := filepath.Join(v.dir, string(pod.UID), "volumes", vol.Name)
		os.MkdirAll(p, 0o777)
		out[vol.Name] = pods.Mount{HostPath: p}
	}
	return out, nil
}
func (v *tmpVolumes) TearDown(uid types.UID) error {
	return os.RemoveAll(filepath.Join(v.dir, string(uid), "volumes"))
}
