package pods

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/wasmkube/wasmkube/runtime/agent/prober"
	"github.com/wasmkube/wasmkube/runtime/oci"
)

// minStopGrace is what a container is left after its preStop hook, however
// long the hook took: upstream's minimum grace period.
const minStopGrace = 2 * time.Second

// syncProbes tells the prober which runtime container each of the pod's
// containers runs as now.
func (m *Manager) syncProbes(pod *corev1.Pod, rec *record) {
	var states []prober.ContainerState
	for name, a := range rec.latestAttempts() {
		states = append(states, prober.ContainerState{
			Name:      name,
			ID:        a.id,
			Running:   a.state.Status == oci.StatusRunning && !a.killing.Load(),
			StartedAt: a.state.StartedAt,
		})
	}
	m.prober.Sync(pod, m.podIP(rec), states)
}

// podIP is where network probes and hooks go: the sandbox's address, or
// the node's for a hostNetwork pod.
func (m *Manager) podIP(rec *record) string {
	if sb := rec.sandbox; sb != nil && sb.ip != nil {
		return sb.ip.String()
	}
	if m.cfg.NodeIP != nil {
		return m.cfg.NodeIP.String()
	}
	return ""
}

// killUnhealthy starts killing a running container whose liveness or
// startup probe failed; its exit then restarts it per restartPolicy. The
// kill runs beside the sync, since it may wait out a grace period.
func (p *pass) killUnhealthy(ctx context.Context, c *corev1.Container, a *attempt) {
	kind, failed := p.m.prober.Failed(c, a.id)
	if !failed || !a.killing.CompareAndSwap(false, true) {
		return
	}
	probe := c.LivenessProbe
	if kind == prober.Startup {
		probe = c.StartupProbe
	}
	grace := specGrace(p.pod)
	if probe != nil && probe.TerminationGracePeriodSeconds != nil {
		grace = time.Duration(*probe.TerminationGracePeriodSeconds) * time.Second
	}
	pod, key, ip, id := p.pod, p.rec.key(), p.m.podIP(p.rec), a.id
	p.m.recorder.Eventf(prober.ContainerRef(pod, c), corev1.EventTypeNormal, "Killing", "Container %s failed %s probe, will be restarted",
		c.Name, strings.ToLower(kind.String()))
	go func() {
		if err := p.m.stopContainer(ctx, pod, c, id, ip, time.Now().Add(grace)); err != nil {
			p.m.log.Info("pods: kill an unhealthy container", "pod", key, "container", c.Name, "err", err)
			a.killing.Store(false) // the next sync tries again
		}
		p.m.queue.Add(key)
	}()
}

// runPostStart runs c's postStart hook right after its start. A failed
// hook kills the container, which then restarts per restartPolicy.
func (m *Manager) runPostStart(ctx context.Context, pod *corev1.Pod, rec *record, c *corev1.Container, a *attempt) {
	if c.Lifecycle == nil || c.Lifecycle.PostStart == nil {
		return
	}
	ip := m.podIP(rec)
	hctx, cancel := context.WithCancel(ctx)
	rec.setHookCancel(cancel)
	msg, err := m.prober.RunHook(hctx, pod, c, a.id, ip, c.Lifecycle.PostStart)
	cut := hctx.Err() != nil
	rec.setHookCancel(nil)
	cancel()
	if err == nil || cut {
		return // done, or cut short by the pod's deletion, whose stop follows
	}
	ref := prober.ContainerRef(pod, c)
	m.recorder.Event(ref, corev1.EventTypeWarning, "FailedPostStartHook", msg)
	m.recorder.Event(ref, corev1.EventTypeNormal, "Killing", "FailedPostStartHook")
	if err := m.stopContainer(ctx, pod, c, a.id, ip, time.Now().Add(specGrace(pod))); err != nil {
		m.log.Info("pods: kill a container whose postStart hook failed", "pod", rec.key(), "container", c.Name, "err", err)
	}
}

// stopContainer runs c's preStop hook, if any, then stops the runtime
// container: SIGTERM, and SIGKILL at the deadline. The hook's time counts
// against the deadline, and a failed hook does not stop the stop.
func (m *Manager) stopContainer(ctx context.Context, pod *corev1.Pod, c *corev1.Container, id, podIP string, deadline time.Time) error {
	if pod != nil && c != nil && c.Lifecycle != nil && c.Lifecycle.PreStop != nil {
		if st, err := m.cfg.Runtime.Status(ctx, id); err == nil && st.Status == oci.StatusRunning {
			hctx, cancel := context.WithDeadline(ctx, deadline)
			msg, err := m.prober.RunHook(hctx, pod, c, id, podIP, c.Lifecycle.PreStop)
			if err != nil && hctx.Err() == nil {
				m.recorder.Event(prober.ContainerRef(pod, c), corev1.EventTypeWarning, "FailedPreStopHook", msg)
			}
			cancel()
		}
	}
	left := time.Until(deadline)
	if left < minStopGrace {
		left = minStopGrace
	}
	if err := m.cfg.Runtime.Stop(ctx, id, left); err != nil {
		return fmt.Errorf("stop %s: %w", id, err)
	}
	return nil
}

// specOf finds container name among the pod's containers and init
// containers.
func specOf(pod *corev1.Pod, name string) *corev1.Container {
	if pod == nil {
		return nil
	}
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Name == name {
			return &pod.Spec.Containers[i]
		}
	}
	for i := range pod.Spec.InitContainers {
		if pod.Spec.InitContainers[i].Name == name {
			return &pod.Spec.InitContainers[i]
		}
	}
	return nil
}
