package agent

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/wasmkube/wasmkube/runtime/agent/pods"
	"github.com/wasmkube/wasmkube/runtime/agent/volumes"
)

// podVolumes hands the volume manager's mounts to the pod worker, which
// does not depend on the volume package's types.
type podVolumes struct{ m *volumes.Manager }

func (v podVolumes) Setup(ctx context.Context, pod *corev1.Pod) (map[string]pods.Mount, error) {
	ms, err := v.m.Setup(ctx, pod)
	if err != nil {
		return nil, err
	}
	out := make(map[string]pods.Mount, len(ms))
	for name, m := range ms {
		out[name] = pods.Mount{HostPath: m.HostPath, ReadOnly: m.ReadOnly}
	}
	return out, nil
}

func (v podVolumes) TearDown(uid types.UID) error { return v.m.TearDown(uid) }
