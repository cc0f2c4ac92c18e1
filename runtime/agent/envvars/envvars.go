package envvars

import (
	"context"
	"errors"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Sources gives Resolve the objects a container's environment refers to.
type Sources interface {
	// ConfigMap returns a ConfigMap; a missing one is an apimachinery
	// NotFound error (apierrors.IsNotFound).
	ConfigMap(ctx context.Context, namespace, name string) (*corev1.ConfigMap, error)
	// Secret returns a Secret; a missing one is an apimachinery NotFound
	// error.
	Secret(ctx context.Context, namespace, name string) (*corev1.Secret, error)
	// Services lists the Services of a namespace, for the Service
	// variables.
	Services(ctx context.Context, namespace string) ([]*corev1.Service, error)
}

// Options carries what Resolve needs to know about the node and the pod's
// sandbox.
type Options struct {
	// NodeAllocatable stands in for the limits a container does not set
	// (cpu, memory, ephemeral-storage) when a resourceFieldRef asks for
	// them. A pod-level limit, where the pod sets one, comes first.
	NodeAllocatable corev1.ResourceList
	// MasterServiceNamespace is where the kubernetes Service is taken
	// from; empty means "default".
	MasterServiceNamespace string
	// HostIPs are the node's IPs, primary first, for status.hostIP and
	// status.hostIPs; empty means the pod's status.hostIPs.
	HostIPs []string
	// PodIPs are the sandbox's IPs, for status.podIP and status.podIPs;
	// empty means the pod's status.podIPs.
	PodIPs []string
	// StrictEnvVarNames skips envFrom keys that are not C-identifier-like
	// names (upstream's IsEnvVarName, the rule before relaxed variable
	// names). Without it a key is skipped only when no environment can
	// hold it (empty, '=', or not printable ASCII).
	StrictEnvVarNames bool
}

func (o Options) masterNamespace() string {
	if o.MasterServiceNamespace == "" {
		return metav1.NamespaceDefault
	}
	return o.MasterServiceNamespace
}

// ErrConfigNotFound is wrapped by the error Resolve returns when a
// ConfigMap, a Secret, or a key of one, is required and missing.
var ErrConfigNotFound = errors.New("container configuration not found")

// Resolve returns the environment of container c of pod as KEY=value
// strings, with kubelet's precedence: the Service variables, overridden by
// envFrom sources in order, overridden by env entries in order. Declared
// variables come first, in the order they first appear, then the Service
// variables the container does not redeclare, Service by Service in name
// order. (Kubelet emits the same two groups in map order; this order is the
// same on every call.)
//
// The second result lists the envFrom keys that were left out because they
// are not valid variable names; kubelet reports each entry as a Warning
// event (see SkippedKeys.Message).
func Resolve(ctx context.Context, src Sources, pod *corev1.Pod, c *corev1.Container, opts Options) ([]string, []SkippedKeys, error) {
	links := pod.Spec.EnableServiceLinks == nil || *pod.Spec.EnableServiceLinks
	svc, err := serviceEnv(ctx, src, pod.Namespace, links, opts.masterNamespace())
	if err != nil {
		return nil, nil, err
	}
	r := &resolver{ctx: ctx, pod: pod, container: c, opts: opts}
	r.configMaps = configMapSource(src)
	r.secrets = secretSource(src)

	env := newOrderedEnv()
	var skipped []SkippedKeys
	for _, from := range c.EnvFrom {
		s, err := r.addEnvFrom(env, from)
		if err != nil {
			return nil, nil, err
		}
		if s != nil {
			skipped = append(skipped, *s)
		}
	}

	lookup := func(name string) (string, bool) {
		if v, ok := env.get(name); ok {
			return v, true
		}
		return svc.get(name)
	}
	for _, ev := range c.Env {
		v, ok, err := r.value(ev, lookup)
		if err != nil {
			return nil, nil, err
		}
		if ok {
			env.set(ev.Name, v)
		}
	}

	out := env.strings()
	for _, name := range svc.names {
		if _, declared := env.get(name); !declared {
			out = append(out, name+"="+svc.values[name])
		}
	}
	return out, skipped, nil
}

// resolver resolves one container's variables, fetching each ConfigMap and
// Secret once.
type resolver struct {
	ctx        context.Context
	pod        *corev1.Pod
	container  *corev1.Container
	opts       Options
	configMaps *dataSource
	secrets    *dataSource
}

// addEnvFrom sets the variables of one envFrom source, in key order. It
// returns the keys it skipped, if any.
func (r *resolver) addEnvFrom(env *orderedEnv, from corev1.EnvFromSource) (*SkippedKeys, error) {
	var (
		ds       *dataSource
		name     string
		optional *bool
	)
	switch {
	case from.ConfigMapRef != nil:
		ds, name, optional = r.configMaps, from.ConfigMapRef.Name, from.ConfigMapRef.Optional
	case from.SecretRef != nil:
		ds, name, optional = r.secrets, from.SecretRef.Name, from.SecretRef.Optional
	default:
		return nil, nil
	}
	data, found, err := ds.get(r.ctx, r.pod.Namespace, name, isTrue(optional))
	if err != nil || !found {
		return nil, err
	}
	keys := make([]string, 0, len(data))
	for k := range data {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var invalid []string
	for _, k := range keys {
		v := data[k]
		k = from.Prefix + k
		if !r.validName(k) {
			invalid = append(invalid, k)
			continue
		}
		env.set(k, v)
	}
	if len(invalid) == 0 {
		return nil, nil
	}
	slices.Sort(invalid)
	return &SkippedKeys{Kind: ds.eventKind, Namespace: r.pod.Namespace, Name: name, Keys: invalid}, nil
}

// value resolves one env entry. ok is false when the entry names an
// optional source that is missing: such an entry sets nothing, and leaves
// an earlier value of the same name in place.
func (r *resolver) value(ev corev1.EnvVar, lookup func(string) (string, bool)) (v string, ok bool, err error) {
	if ev.Value != "" {
		return expand(ev.Value, lookup), true, nil
	}
	vf := ev.ValueFrom
	switch {
	case vf == nil:
		return "", true, nil
	case vf.FieldRef != nil:
		v, err = r.fieldRefValue(vf.FieldRef)
		return v, true, err
	case vf.ResourceFieldRef != nil:
		v, err = r.resourceFieldRefValue(vf.ResourceFieldRef)
		return v, true, err
	case vf.ConfigMapKeyRef != nil:
		ref := vf.ConfigMapKeyRef
		return r.configMaps.key(r.ctx, r.pod.Namespace, ref.Name, ref.Key, isTrue(ref.Optional))
	case vf.SecretKeyRef != nil:
		ref := vf.SecretKeyRef
		return r.secrets.key(r.ctx, r.pod.Namespace, ref.Name, ref.Key, isTrue(ref.Optional))
	case vf.FileKeyRef != nil:
		return "", false, fmt.Errorf("env %s: fileKeyRef is not supported", ev.Name)
	}
	return "", true, nil
}

func isTrue(b *bool) bool { return b != nil && *b }

// orderedEnv is a set of variables that remembers the order in which names
// were first set.
type orderedEnv struct {
	names  []string
	values map[string]string
}

func newOrderedEnv() *orderedEnv {
	return &orderedEnv{values: map[string]string{}}
}

func (e *orderedEnv) set(name, value string) {
	if _, ok := e.values[name]; !ok {
		e.names = append(e.names, name)
	}
	e.values[name] = value
}

func (e *orderedEnv) get(name string) (string, bool) {
	v, ok := e.values[name]
	return v, ok
}

func (e *orderedEnv) strings() []string {
	out := make([]string, 0, len(e.names))
	for _, n := range e.names {
		out = append(out, n+"="+e.values[n])
	}
	return out
}
