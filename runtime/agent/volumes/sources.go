package volumes

import (
	"context"
	"fmt"
	"os"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// defaultFileMode is the mode of a volume file when neither the item nor
// the volume sets one: the API's default for configMap, secret,
// downwardAPI and projected volumes (0644).
const defaultFileMode os.FileMode = 0o644

// fileMode turns an API file mode into an os.FileMode, keeping the
// permission bits only.
func fileMode(mode *int32) os.FileMode {
	if mode == nil {
		return defaultFileMode
	}
	return os.FileMode(*mode) & os.ModePerm
}

// keyedKind is a kind of object whose keys become files: ConfigMaps or
// Secrets.
type keyedKind struct {
	// resource names the kind in errors, as kubelet does: "configmap",
	// "secret".
	resource string
	// missingKey is kubelet's wording for an item naming a missing key.
	missingKey string
	// fetch returns the object's data, or found false when the object is
	// missing.
	fetch func(ctx context.Context, namespace, name string) (data map[string][]byte, found bool, err error)
}

func (m *Manager) configMaps() keyedKind {
	return newKeyedKind("configmap", "references non-existent config key", m.src.ConfigMap, configMapData)
}

func (m *Manager) secrets() keyedKind {
	// Secret data are bytes already; stringData never reaches a node,
	// since the API server folds it into data.
	return newKeyedKind("secret", "references non-existent secret key", m.src.Secret,
		func(s *corev1.Secret) map[string][]byte { return s.Data })
}

// newKeyedKind makes a keyedKind from a Sources getter and a function that
// takes the data out of the object it returns.
func newKeyedKind[T any](resource, missingKey string,
	get func(ctx context.Context, namespace, name string) (*T, error),
	data func(*T) map[string][]byte,
) keyedKind {
	return keyedKind{
		resource:   resource,
		missingKey: missingKey,
		fetch: func(ctx context.Context, ns, name string) (map[string][]byte, bool, error) {
			obj, err := get(ctx, ns, name)
			switch {
			case apierrors.IsNotFound(err), err == nil && obj == nil:
				return nil, false, nil
			case err != nil:
				return nil, false, err
			}
			return data(obj), true, nil
		},
	}
}

// configMapData merges a ConfigMap's text and binary data; the API server
// keeps their keys apart.
func configMapData(cm *corev1.ConfigMap) map[string][]byte {
	out := make(map[string][]byte, len(cm.Data)+len(cm.BinaryData))
	for k, v := range cm.Data {
		out[k] = []byte(v)
	}
	for k, v := range cm.BinaryData {
		out[k] = v
	}
	return out
}

// payload builds the files of a configMap or secret volume (or projection)
// as kubelet's MakePayload does: every key under its own name, or only
// the listed items under their paths; each file with its item's mode, or
// defaultMode. A missing object or key is an error matching
// ErrSourceNotFound, unless optional: then it only leaves files out.
func (k keyedKind) payload(ctx context.Context, ns, name string, items []corev1.KeyToPath, optional *bool, defaultMode *int32) (payload, error) {
	opt := optional != nil && *optional
	data, found, err := k.fetch(ctx, ns, name)
	if err != nil {
		return nil, fmt.Errorf("get %s %q: %w", k.resource, name, err)
	}
	if !found && !opt {
		return nil, notFound{apierrors.NewNotFound(schema.GroupResource{Resource: k.resource}, name)}
	}
	mode := fileMode(defaultMode)
	p := payload{}
	if len(items) == 0 {
		for key, v := range data {
			p[key] = fileProjection{data: v, mode: mode}
		}
		return p, nil
	}
	for _, it := range items {
		v, ok := data[it.Key]
		if !ok {
			if opt {
				continue
			}
			return nil, notFound{fmt.Errorf("%s %q %s: %s", k.resource, name, k.missingKey, it.Key)}
		}
		fp := fileProjection{data: v, mode: mode}
		if it.Mode != nil {
			fp.mode = fileMode(it.Mode)
		}
		p[it.Path] = fp
	}
	return p, nil
}

// notFound is a missing required ConfigMap, Secret or key: it says what
// err says and matches ErrSourceNotFound as well as err (for a missing
// object, apierrors.IsNotFound).
type notFound struct{ error }

func (e notFound) Is(target error) bool { return target == ErrSourceNotFound }

func (e notFound) Unwrap() error { return e.error }
