package volumes

import (
	"context"
	"errors"
	"fmt"
	"maps"

	corev1 "k8s.io/api/core/v1"
)

// defaultTokenExpiration is the API's default for a projected token's
// expirationSeconds.
const defaultTokenExpiration int64 = 3600

// projectedPayload merges the files of every source of a projected volume,
// each with the projected volume's defaultMode unless its item sets one.
// As in kubelet, every source is tried and all their errors are returned
// together; nothing is written unless all succeed.
func (m *Manager) projectedPayload(ctx context.Context, pod *corev1.Pod, src *corev1.ProjectedVolumeSource) (payload, error) {
	p := payload{}
	var errs []error
	for i := range src.Sources {
		s := &src.Sources[i]
		var part payload
		var err error
		switch {
		case s.ConfigMap != nil:
			c := s.ConfigMap
			part, err = m.configMaps().payload(ctx, pod.Namespace, c.Name, c.Items, c.Optional, src.DefaultMode)
		case s.Secret != nil:
			c := s.Secret
			part, err = m.secrets().payload(ctx, pod.Namespace, c.Name, c.Items, c.Optional, src.DefaultMode)
		case s.DownwardAPI != nil:
			part, err = m.downwardPayload(pod, s.DownwardAPI.Items, src.DefaultMode)
		case s.ServiceAccountToken != nil:
			part, err = m.tokenPayload(ctx, pod, s.ServiceAccountToken, src.DefaultMode)
		default:
			if kind := sourceKind(*s); kind != "" {
				err = fmt.Errorf("%s projections are not supported by this node", kind)
			} else {
				err = errors.New("a projected source sets nothing")
			}
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		maps.Copy(p, part)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return p, nil
}

// tokenPayload is the file of a serviceAccountToken projection: a token
// of the pod's service account from the TokenSource.
func (m *Manager) tokenPayload(ctx context.Context, pod *corev1.Pod, src *corev1.ServiceAccountTokenProjection, defaultMode *int32) (payload, error) {
	if m.tokens == nil {
		return nil, fmt.Errorf("service account tokens are not available on this node (projected token %q)", src.Path)
	}
	exp := defaultTokenExpiration
	if src.ExpirationSeconds != nil {
		exp = *src.ExpirationSeconds
	}
	token, err := m.tokens(ctx, pod, src.Audience, exp)
	if err != nil {
		return nil, fmt.Errorf("token of service account %q for %q: %w", pod.Spec.ServiceAccountName, src.Path, err)
	}
	return payload{src.Path: {data: []byte(token), mode: fileMode(defaultMode)}}, nil
}
