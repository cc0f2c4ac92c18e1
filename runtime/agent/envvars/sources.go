package envvars

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"
)

// EventReasonInvalidEnvVarNames is the reason of the Warning event kubelet
// records for keys an envFrom source could not provide.
const EventReasonInvalidEnvVarNames = "InvalidEnvironmentVariableNames"

// SkippedKeys names the keys of one envFrom source that were left out of
// the environment because they are not valid variable names.
type SkippedKeys struct {
	Kind      string   // "configMap" or "secret"
	Namespace string   // the pod's namespace
	Name      string   // the ConfigMap or Secret
	Keys      []string // sorted, with the envFrom prefix applied
}

// Message is the text of the event kubelet records for s.
func (s SkippedKeys) Message() string {
	return fmt.Sprintf("Keys [%s] from the EnvFrom %s %s/%s were skipped since they are considered invalid environment variable names.",
		strings.Join(s.Keys, ", "), s.Kind, s.Namespace, s.Name)
}

func (r *resolver) validName(name string) bool {
	if r.opts.StrictEnvVarNames {
		return len(validation.IsEnvVarName(name)) == 0
	}
	return len(validation.IsRelaxedEnvVarName(name)) == 0
}

// dataSource fetches the data of ConfigMaps or of Secrets, once per name.
type dataSource struct {
	resource  string // in the NotFound message: "configmap", "secret"
	kind      string // in the missing key message: "ConfigMap", "Secret"
	eventKind string // in the skipped keys event: "configMap", "secret"
	fetch     func(ctx context.Context, namespace, name string) (map[string]string, error)
	cache     map[string]map[string]string
}

func configMapSource(src Sources) *dataSource {
	return newDataSource("configmap", "ConfigMap", "configMap", src.ConfigMap, func(cm *corev1.ConfigMap) map[string]string {
		if cm.Data == nil {
			return map[string]string{}
		}
		return cm.Data
	})
}

func secretSource(src Sources) *dataSource {
	return newDataSource("secret", "Secret", "secret", src.Secret, secretData)
}

// newDataSource makes a dataSource from a Sources getter and a function
// that takes the data out of the object it returns.
func newDataSource[T any](resource, kind, eventKind string,
	get func(ctx context.Context, namespace, name string) (*T, error),
	data func(*T) map[string]string,
) *dataSource {
	return &dataSource{
		resource: resource, kind: kind, eventKind: eventKind,
		fetch: func(ctx context.Context, ns, name string) (map[string]string, error) {
			obj, err := get(ctx, ns, name)
			if err != nil || obj == nil {
				return nil, err
			}
			return data(obj), nil
		},
	}
}

func secretData(s *corev1.Secret) map[string]string {
	data := make(map[string]string, len(s.Data))
	for k, v := range s.Data {
		data[k] = string(v)
	}
	return data
}

// get returns the data of object name. found is false when the object is
// missing and optional; when it is missing and required the error wraps
// ErrConfigNotFound.
func (d *dataSource) get(ctx context.Context, ns, name string, optional bool) (data map[string]string, found bool, err error) {
	if data, ok := d.cache[name]; ok {
		return data, true, nil
	}
	data, err = d.fetch(ctx, ns, name)
	missing := apierrors.IsNotFound(err)
	if err == nil && data == nil {
		// A source that answers neither an object nor an error has
		// nothing by that name either.
		missing = true
	}
	switch {
	case missing && optional:
		return nil, false, nil
	case missing:
		return nil, false, &configError{
			api: apierrors.NewNotFound(schema.GroupResource{Resource: d.resource}, name),
		}
	case err != nil:
		return nil, false, err
	}
	if d.cache == nil {
		d.cache = map[string]map[string]string{}
	}
	d.cache[name] = data
	return data, true, nil
}

// key returns the value of one key of object name, as a configMapKeyRef or
// secretKeyRef asks for it.
func (d *dataSource) key(ctx context.Context, ns, name, key string, optional bool) (v string, ok bool, err error) {
	data, found, err := d.get(ctx, ns, name, optional)
	if err != nil || !found {
		return "", false, err
	}
	v, ok = data[key]
	if !ok && !optional {
		return "", false, &configError{
			msg: fmt.Sprintf("couldn't find key %s in %s %s/%s", key, d.kind, ns, name),
		}
	}
	return v, ok, nil
}

// configError is a missing required ConfigMap, Secret or key. Its text is
// kubelet's; it matches ErrConfigNotFound, and a missing object also
// matches apierrors.IsNotFound.
type configError struct {
	msg string
	api *apierrors.StatusError
}

func (e *configError) Error() string {
	if e.api != nil {
		return e.api.Error()
	}
	return e.msg
}

func (e *configError) Unwrap() []error {
	if e.api != nil {
		return []error{ErrConfigNotFound, e.api}
	}
	return []error{ErrConfigNotFound}
}
