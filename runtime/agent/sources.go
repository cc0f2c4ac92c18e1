package agent

import (
	"context"
	"errors"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// objects reads the ConfigMaps, Secrets and Services pods refer to,
// keeping each for a short while: kubelet's TTL cache strategy. A node
// reads only what its pods use, instead of watching every Secret of the
// cluster, and a changed object reaches its pods within the TTL plus a
// resync.
type objects struct {
	client kubernetes.Interface
	ttl    time.Duration
	now    func() time.Time

	mu      sync.Mutex
	entries map[string]entry
}

type entry struct {
	obj     any
	err     error
	fetched time.Time
	// used is when a pod last asked for it; entries nobody asked for in
	// a while are dropped.
	used time.Time
}

func newObjects(client kubernetes.Interface, ttl time.Duration) *objects {
	return &objects{client: client, ttl: ttl, now: time.Now, entries: map[string]entry{}}
}

// get returns the cached result for key, or fetches it. Errors (NotFound
// above all) are cached too, so a pod waiting for a missing ConfigMap does
// not hammer the API server. When the API server cannot be reached, the
// last object read stays in use: a node cut off from its control plane
// restarts its containers with what they had.
func (o *objects) get(key string, fetch func() (any, error)) (any, error) {
	now := o.now()
	o.mu.Lock()
	e, ok := o.entries[key]
	if ok {
		e.used = now
		o.entries[key] = e
	}
	o.mu.Unlock()
	if ok && now.Sub(e.fetched) < o.ttl {
		return e.obj, e.err
	}
	obj, err := fetch()
	if err != nil && ok && e.err == nil && !isAPIAnswer(err) {
		return e.obj, nil
	}
	o.mu.Lock()
	o.entries[key] = entry{obj: obj, err: err, fetched: now, used: now}
	// Drop what has long gone unused, so deleted pods' objects do not
	// pile up.
	for k, e := range o.entries {
		if now.Sub(e.used) > 10*o.ttl {
			delete(o.entries, k)
		}
	}
	o.mu.Unlock()
	return obj, err
}

// isAPIAnswer says whether err is the API server's answer (NotFound,
// Forbidden, ...) rather than a failure to reach it.
func isAPIAnswer(err error) bool {
	var status apierrors.APIStatus
	return errors.As(err, &status)
}

func (o *objects) ConfigMap(ctx context.Context, namespace, name string) (*corev1.ConfigMap, error) {
	obj, err := o.get("cm/"+namespace+"/"+name, func() (any, error) {
		return o.client.CoreV1().ConfigMaps(namespace).Get(ctx, name, metav1.GetOptions{})
	})
	if err != nil {
		return nil, err
	}
	return obj.(*corev1.ConfigMap), nil
}

func (o *objects) Secret(ctx context.Context, namespace, name string) (*corev1.Secret, error) {
	obj, err := o.get("secret/"+namespace+"/"+name, func() (any, error) {
		return o.client.CoreV1().Secrets(namespace).Get(ctx, name, metav1.GetOptions{})
	})
	if err != nil {
		return nil, err
	}
	return obj.(*corev1.Secret), nil
}

func (o *objects) Services(ctx context.Context, namespace string) ([]*corev1.Service, error) {
	obj, err := o.get("svc/"+namespace, func() (any, error) {
		list, err := o.client.CoreV1().Services(namespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, err
		}
		out := make([]*corev1.Service, len(list.Items))
		for i := range list.Items {
			out[i] = &list.Items[i]
		}
		return out, nil
	})
	if err != nil && !isAPIAnswer(err) {
		// Never read and unreachable now (an agent started while cut off
		// from its control plane): the services' variables are left out,
		// as a kubelet without an API server leaves them out, rather than
		// keeping the node's containers from restarting.
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return obj.([]*corev1.Service), nil
}
