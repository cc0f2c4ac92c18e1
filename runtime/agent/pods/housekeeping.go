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
	if pods, err := m.lister.List(labels.Everything()); err == nil {
		for _, p := range pods {
			known[p.UID] = true
		}
	}
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
