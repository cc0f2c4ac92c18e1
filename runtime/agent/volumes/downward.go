package volumes

import (
	"errors"
	"fmt"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"

	"github.com/wasmkube/wasmkube/runtime/agent/fieldpath"
)

// downwardPayload builds the files of a downwardAPI volume (or projection)
// as kubelet's CollectData does: one file per item, holding a field of the
// pod or a resource of one of its containers.
func (m *Manager) downwardPayload(pod *corev1.Pod, items []corev1.DownwardAPIVolumeFile, defaultMode *int32) (payload, error) {
	p := payload{}
	var errs []error
	for _, it := range items {
		fp := fileProjection{mode: fileMode(defaultMode)}
		if it.Mode != nil {
			fp.mode = fileMode(it.Mode)
		}
		var v string
		var err error
		switch {
		case it.FieldRef != nil:
			// Besides the metadata fields kubelet allows in volumes,
			// the node name, service account and IPs are offered too,
			// as they are to environment variables; the IPs are those
			// of the pod's status, so they appear once it has them.
			v, err = fieldpath.FieldValue(pod, it.FieldRef, fieldpath.StatusIPs(pod))
		case it.ResourceFieldRef != nil:
			v, err = m.resourceFieldValue(pod, it.ResourceFieldRef)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", it.Path, err))
			continue
		}
		fp.data = []byte(v)
		p[filepath.Clean(it.Path)] = fp
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return p, nil
}

// resourceFieldValue is the value of a resourceFieldRef: a limit or
// request of a container of the pod in units of the divisor, rounded up.
// Unset cpu, memory and ephemeral-storage limits, of init containers too,
// are the pod-level limits or else the node's allocatable amounts, as in
// kubelet's volume plugin.
func (m *Manager) resourceFieldValue(pod *corev1.Pod, fs *corev1.ResourceFieldSelector) (string, error) {
	c, _, err := fieldpath.FindContainer(pod, fs.ContainerName)
	if err != nil {
		return "", err
	}
	v, err := fieldpath.ResourceValue(fs, c, fieldpath.PodLimits(pod), m.allocatable)
	if err == nil && fs.Divisor.Sign() < 0 {
		// A negative divisor would give every file 0; say what is wrong
		// instead, after the container and resource have been checked.
		return "", fmt.Errorf("invalid divisor for %s", fs.Resource)
	}
	return v, err
}
