package agent

import (
	"context"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
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
}

func newObjects(client kubernetes.Interface, ttl time.Duration) *objects {
	return &objects{client: client, ttl: ttl, now: time.Now, entries: map[string]entry{}}
}

// get returns the cached result for key, or fetches it. Errors (NotFound
// above all) are cached too, so a pod waiting for a missing ConfigMap does
// not hammer the API server.
func (o *objects) get(key string, fetch func() (any, error)) (any, error) {
	o.mu.Lock()
	e, ok := o.entries[key]
	o.mu.Unlock()
	if ok && o.now().Sub(e.fetched) < o.ttl {
		return e.obj, e.err
	}
	obj, err := fetch()
	o.mu.Lock()
	o.entries[key] = entry{obj: obj, err: err, fetched: o.now()}
	// Drop what has long expired, so deleted pods' objects do not pile up.
	for k, e := range o.entries {
		if o.now().Sub(e.fetched) > 10*o.ttl {
			delete(o.entries, k)
		}
	}
	o.mu.Unlock()
	return obj, err
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
	if err != nil {
		return nil, err
	}
	return obj.([]*corev1.Service), nil
}
