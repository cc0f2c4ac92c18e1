package pods

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/wasmkube/wasmkube/internal/atomicfile"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

// checkpoints keeps the last pod object the agent saw for each pod it runs,
// one JSON file per pod under dir. An agent that starts while the API
// server is unreachable runs its pods from them, as kubelet runs static
// pods from a manifest directory.
type checkpoints struct {
	dir string

	mu sync.Mutex
	// saved is the resourceVersion last written per pod, so that a sync
	// of an unchanged pod writes nothing.
	saved map[types.UID]string
}

func newCheckpoints(dir string) *checkpoints {
	return &checkpoints{dir: dir, saved: map[types.UID]string{}}
}

func (c *checkpoints) path(uid types.UID) string {
	return filepath.Join(c.dir, string(uid)+".json")
}

// save writes the pod if it changed since the last save. The file is
// replaced atomically: a power cut leaves the old version or the new one,
// never a torn file.
func (c *checkpoints) save(pod *corev1.Pod) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if rv, ok := c.saved[pod.UID]; ok && rv == pod.ResourceVersion {
		return nil
	}
	b, err := json.Marshal(pod)
	if err != nil {
		return fmt.Errorf("checkpoint of %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	if err := atomicfile.Write(c.path(pod.UID), b, 0o600); err != nil {
		return fmt.Errorf("checkpoint of %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	c.saved[pod.UID] = pod.ResourceVersion
	return nil
}

// remove deletes the pod's checkpoint; a missing one is fine.
func (c *checkpoints) remove(uid types.UID) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.saved, uid)
	if err := os.Remove(c.path(uid)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove checkpoint of pod %s: %w", uid, err)
	}
	return nil
}

// load reads every checkpoint. Files that do not parse (which atomic
// writes should rule out) are reported and skipped: one bad file must not
// keep the other pods from running.
func (c *checkpoints) load() ([]*corev1.Pod, []error) {
	entries, err := os.ReadDir(c.dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, []error{fmt.Errorf("read checkpoints: %w", err)}
	}
	var pods []*corev1.Pod
	var errs []error
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".json") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(c.dir, name))
		if err != nil {
			errs = append(errs, fmt.Errorf("read checkpoint %s: %w", name, err))
			continue
		}
		pod := &corev1.Pod{}
		if err := json.Unmarshal(b, pod); err != nil || string(pod.UID)+".json" != name {
			errs = append(errs, fmt.Errorf("checkpoint %s is not a pod of that uid (%v)", name, err))
			continue
		}
		pods = append(pods, pod)
		c.mu.Lock()
		c.saved[pod.UID] = pod.ResourceVersion
		c.mu.Unlock()
	}
	return pods, errs
}

// uids lists the pods that have a checkpoint.
func (c *checkpoints) uids() ([]types.UID, error) {
	entries, err := os.ReadDir(c.dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read checkpoints: %w", err)
	}
	var out []types.UID
	for _, e := range entries {
		if uid, ok := strings.CutSuffix(e.Name(), ".json"); ok {
			out = append(out, types.UID(uid))
		}
	}
	return out, nil
}

// cachedLister serves pods from checkpoints, in the shape of the
// informer's lister, for the time the API server cannot be listed.
func cachedLister(pods []*corev1.Pod) (corelisters.PodLister, error) {
	idx := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	for _, p := range pods {
		if err := idx.Add(p); err != nil {
			return nil, fmt.Errorf("index cached pod %s/%s: %w", p.Namespace, p.Name, err)
		}
	}
	return corelisters.NewPodLister(idx), nil
}
