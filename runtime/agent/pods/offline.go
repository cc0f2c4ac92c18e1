package pods

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

// startupWait bounds how long a starting agent waits for the API server's
// list of its pods before it runs them from their checkpoints instead. A
// failed list ends the wait at once.
const startupWait = 10 * time.Second

// startup chooses where the pods come from until the informer has synced.
// With the API server reachable that is the informer at once. Without, the
// pods run from their checkpoints: containers that run are adopted and kept,
// crashed ones restart under their restartPolicy, and nothing is removed for
// being absent, since only the API server can say a pod is gone. Once the
// informer syncs, every pod is synced again against it, which stops the
// pods deleted meanwhile and writes the statuses.
func (m *Manager) startup(ctx context.Context, inf cache.SharedIndexInformer, lister corelisters.PodLister, unreachable <-chan struct{}) error {
	synced := make(chan struct{})
	go func() {
		if cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
			close(synced)
		}
	}()
	timer := time.NewTimer(startupWait)
	defer timer.Stop()
	select {
	case <-synced:
		m.goOnline(lister)
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-unreachable:
	case <-timer.C:
	}
	cached, errs := m.checkpoints.load()
	for _, err := range errs {
		m.log.Warn("pods: skipping a checkpoint", "err", err)
	}
	cl, err := cachedLister(cached)
	if err != nil {
		return err
	}
	m.setLister(cl, false)
	m.log.Info("pods: running the pods cached on disk until the API server answers", "pods", len(cached))
	m.enqueueAll(cached)
	go func() {
		select {
		case <-synced:
			m.log.Info("pods: the API server answers; running the pods it lists")
			m.goOnline(lister)
		case <-ctx.Done():
		}
	}()
	return nil
}

// goOnline switches to the informer's lister and syncs every pod against it.
func (m *Manager) goOnline(lister corelisters.PodLister) {
	m.setLister(lister, true)
	pods, err := lister.List(labels.Everything())
	if err != nil {
		m.log.Warn("pods: list the informer's pods", "err", err)
	}
	m.enqueueAll(pods)
}

// enqueueAll queues the pods and every pod the agent has a record of;
// records whose pods are gone are synced too, which removes them.
func (m *Manager) enqueueAll(pods []*corev1.Pod) {
	for _, p := range pods {
		m.queue.Add(p.Namespace + "/" + p.Name)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, rec := range m.records {
		m.queue.Add(rec.key())
	}
}

func (m *Manager) setLister(l corelisters.PodLister, authoritative bool) {
	m.listerMu.Lock()
	m.lister = l
	m.listerMu.Unlock()
	m.synced.Store(authoritative)
}

// podLister is where pods are read from now.
func (m *Manager) podLister() corelisters.PodLister {
	m.listerMu.RLock()
	defer m.listerMu.RUnlock()
	return m.lister
}

// checkpoint saves the pod's object for a start without the API server.
// Only objects read from the API server are saved.
func (m *Manager) checkpoint(pod *corev1.Pod) {
	if !m.synced.Load() {
		return
	}
	if err := m.checkpoints.save(pod); err != nil {
		m.log.Warn("pods: checkpoint", "err", err)
	}
}
