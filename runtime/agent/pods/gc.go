package pods

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/types"

	"github.com/wasmkube/wasmkube/runtime/oci"
)

// keptAttempts is how many attempts of a container stay on the node: the
// latest, and the one before for lastState and `kubectl logs --previous`.
const keptAttempts = 2

// removeAttempt deletes an obsolete attempt: its runtime container (with
// its snapshot), its log and its termination log.
func (m *Manager) removeAttempt(ctx context.Context, rec *record, container string, a *attempt) error {
	if err := m.cfg.Runtime.Remove(ctx, a.id); err != nil {
		return err
	}
	var errs []error
	for _, f := range []string{
		m.attemptLog(rec, container, a.n),
		filepath.Join(m.cfg.Sandboxes.ContainerDir(rec.uid, container), strconv.Itoa(a.n)+"-termination-log"),
	} {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// attemptLog is where attempt n of a container logs.
func (m *Manager) attemptLog(rec *record, container string, n int) string {
	return filepath.Join(m.logDir(rec.namespace, rec.name, rec.uid), container, strconv.Itoa(n)+".log")
}

// collectContainers is the periodic container garbage collection. For
// every pod the agent runs it removes the runtime containers of attempts
// older than the last keptAttempts of each container (left by a removal
// that failed, or by an agent that died between making an attempt and
// removing the one it replaced) and log files of attempts the pod no
// longer has. It costs one runtime listing and a directory listing per
// pod; a pod busy in a sync is left for the next round.
func (m *Manager) collectContainers(ctx context.Context) {
	cs, err := m.cfg.Runtime.Containers(ctx)
	if err != nil {
		m.log.Info("pods: container garbage collection: list containers", "err", err)
		return
	}
	byPod := map[types.UID][]oci.Container{}
	for _, c := range cs {
		if uid := types.UID(c.Labels[labelPodUID]); uid != "" {
			byPod[uid] = append(byPod[uid], c)
		}
	}
	m.mu.Lock()
	recs := make([]*record, 0, len(m.records))
	for _, rec := range m.records {
		recs = append(recs, rec)
	}
	m.mu.Unlock()
	for _, rec := range recs {
		if ctx.Err() != nil {
			return
		}
		if rec.terminating.Load() || !rec.mu.TryLock() {
			continue
		}
		m.collectPod(ctx, rec, byPod[rec.uid])
		rec.mu.Unlock()
	}
}

// collectPod runs with rec.mu held, so no attempt is being made meanwhile.
func (m *Manager) collectPod(ctx context.Context, rec *record, containers []oci.Container) {
	for name, as := range rec.attempts {
		if len(as) > keptAttempts {
			rec.attempts[name] = as[len(as)-keptAttempts:]
		}
	}
	recorded := map[string]bool{}
	for _, a := range rec.allAttempts() {
		recorded[a.id] = true
	}
	for _, c := range containers {
		name := c.Labels[labelContainerName]
		n, err := strconv.Atoi(c.Labels[labelAttempt])
		if recorded[c.ID] || err != nil || rec.latest(name) == nil {
			continue
		}
		if err := m.removeAttempt(ctx, rec, name, &attempt{id: c.ID, n: n}); err != nil {
			m.log.Info("pods: remove an old attempt", "pod", rec.key(), "id", c.ID, "err", err)
		}
	}
	dir := m.logDir(rec.namespace, rec.name, rec.uid)
	names, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, c := range names {
		keep := map[string]bool{}
		for _, a := range rec.attempts[c.Name()] {
			keep[strconv.Itoa(a.n)+".log"] = true
		}
		files, err := os.ReadDir(filepath.Join(dir, c.Name()))
		if err != nil {
			continue
		}
		for _, f := range files {
			if strings.HasSuffix(f.Name(), ".log") && !keep[f.Name()] {
				if err := os.Remove(filepath.Join(dir, c.Name(), f.Name())); err != nil {
					m.log.Info("pods: remove an old log", "pod", rec.key(), "err", err)
				}
			}
		}
	}
}
