package pods

import (
	"context"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
)

// housekeeping removes sandboxes that belong to no pod: what an agent that
// crashed between steps, or a pod deleted while the agent was down, left
// behind. Containers are handled by adoption; this is the rest.
func (m *Manager) housekeeping(ctx context.Context) {
	if !m.synced.Load() {
		return // only the API server can say a pod is gone
	}
	// Read what is on the node before what the agent knows: a sandbox made
	// after this point has a record already (syncs make the record first).
	found, err := m.cfg.Sandboxes.List()
	if err != nil {
		m.log.Info("pods: list the node's sandboxes", "err", err)
		return
	}
	known := map[types.UID]bool{}
	m.mu.Lock()
	for uid := range m.records {
		known[uid] = true
	}
	m.mu.Unlock()
	pods, err := m.podLister().List(labels.Everything())
	if err != nil {
		return
	}
	for _, p := range pods {
		known[p.UID] = true
	}
	m.removeCheckpoints(known)
	for uid := range found {
		if known[uid] {
			continue
		}
		m.log.Info("pods: removing the sandbox of a pod that is gone", "uid", uid)
		if err := m.cfg.Sandboxes.Remove(ctx, uid); err != nil {
			m.log.Info("pods: remove orphaned sandbox", "uid", uid, "err", err)
			continue
		}
		if err := m.cfg.Volumes.TearDown(uid); err == nil {
			_ = m.cfg.Sandboxes.Forget(uid)
		}
	}
}

// removeCheckpoints removes the checkpoints of pods neither the API server
// nor the agent knows: those finalized by an agent that died before it
// removed the file.
func (m *Manager) removeCheckpoints(known map[types.UID]bool) {
	uids, err := m.checkpoints.uids()
	if err != nil {
		m.log.Info("pods: list checkpoints", "err", err)
		return
	}
	for _, uid := range uids {
		if !known[uid] {
			if err := m.checkpoints.remove(uid); err != nil {
				m.log.Info("pods: remove checkpoint", "uid", uid, "err", err)
			}
		}
	}
}
