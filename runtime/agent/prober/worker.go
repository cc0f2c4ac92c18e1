package prober

import (
	"context"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// maxProbeRetries is how often a check that could not be made (as opposed
// to one that failed) is tried again within one period, as upstream does.
const maxProbeRetries = 3

// worker probes one container for one probe kind, across its restarts.
type worker struct {
	m         *Manager
	key       workerKey
	kind      Kind
	ref       *corev1.ObjectReference // the container, for events
	podKey    string
	container *corev1.Container
	probe     *corev1.Probe

	// state is the container as the pod worker last reported it.
	mu    sync.Mutex
	state ContainerState
	podIP string

	wakeCh chan struct{}
	stopCh chan struct{}
	once   sync.Once

	// Owned by the probing goroutine.
	containerID string // the runtime container the results are for
	lastResult  Result
	resultRun   int
	// onHold: the liveness or startup probe failed for this runtime
	// container, which is being killed; nothing more to learn from it.
	onHold bool
}

func newWorker(m *Manager, pod *corev1.Pod, c *corev1.Container, k Kind) *worker {
	return &worker{
		m:         m,
		key:       workerKey{uid: pod.UID, name: c.Name, kind: k},
		kind:      k,
		ref:       ContainerRef(pod, c),
		podKey:    pod.Namespace + "/" + pod.Name,
		container: c.DeepCopy(),
		probe:     probeOf(c, k).DeepCopy(),
		wakeCh:    make(chan struct{}, 1),
		stopCh:    make(chan struct{}),
	}
}

// update records the container's state; a new runtime container, or one
// that just began running, is probed at once rather than a period later.
func (w *worker) update(s ContainerState, podIP string) {
	w.mu.Lock()
	changed := s.ID != w.state.ID || s.Running != w.state.Running
	w.state, w.podIP = s, podIP
	w.mu.Unlock()
	if changed {
		w.wake()
	}
}

func (w *worker) snapshot() (ContainerState, string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.state, w.podIP
}

func (w *worker) wake() {
	select {
	case w.wakeCh <- struct{}{}:
	default:
	}
}

func (w *worker) stop() { w.once.Do(func() { close(w.stopCh) }) }

func (w *worker) run(ctx context.Context) {
	period := time.Duration(w.probe.PeriodSeconds) * time.Second
	if period <= 0 {
		period = 10 * time.Second
	}
	tick := time.NewTicker(period)
	defer tick.Stop()
	for {
		w.doProbe(ctx)
		select {
		case <-ctx.Done():
			return
		case <-w.stopCh:
			return
		case <-tick.C:
		case <-w.wakeCh:
		}
	}
}

// doProbe runs the probe once if the container is in a state to be
// probed, and caches the result once the thresholds are met.
func (w *worker) doProbe(ctx context.Context) {
	st, podIP := w.snapshot()
	if st.ID == "" {
		return // not made yet
	}
	if st.ID != w.containerID {
		if w.containerID != "" {
			w.m.dropResult(w.containerID, w.kind)
		}
		w.containerID = st.ID
		w.lastResult, w.resultRun, w.onHold = Unknown, 0, false
		w.m.setResult(w, st.ID, w.kind.initial())
	}
	if w.onHold {
		return
	}
	if !st.Running {
		if w.kind == Readiness {
			w.m.setResult(w, st.ID, Failure)
		}
		return
	}
	started := w.m.Started(w.container, st.ID)
	if w.kind == Startup && started {
		return // done: a startup probe runs until its first success
	}
	if w.kind != Startup && !started {
		return // held back by the startup probe
	}
	if w.m.cfg.Clock.Since(st.StartedAt) < time.Duration(w.probe.InitialDelaySeconds)*time.Second {
		return
	}

	t := Target{ContainerID: st.ID, Container: w.container, PodIP: podIP}
	var (
		result Result
		output string
		err    error
	)
	for range maxProbeRetries {
		if result, output, err = w.m.check(ctx, w.kind, w.probe, t); err == nil {
			break
		}
	}
	rec := w.m.cfg.Recorder
	switch {
	case err != nil:
		if rec != nil {
			rec.Eventf(w.ref, corev1.EventTypeWarning, "Unhealthy", "%s probe errored and resulted in unknown state: %v", w.kind, err)
		}
		return // the check could not be made: no conclusion
	case result == Failure:
		if rec != nil {
			rec.Eventf(w.ref, corev1.EventTypeWarning, "Unhealthy", "%s probe failed: %s", w.kind, output)
		}
	case result == Warning:
		if rec != nil {
			rec.Eventf(w.ref, corev1.EventTypeWarning, "ProbeWarning", "%s probe warning: %s", w.kind, output)
		}
		result = Success
	}

	if result == w.lastResult {
		w.resultRun++
	} else {
		w.lastResult, w.resultRun = result, 1
	}
	if (result == Failure && w.resultRun < int(w.probe.FailureThreshold)) ||
		(result == Success && w.resultRun < int(w.probe.SuccessThreshold)) {
		return // not enough in a row to change the cached result
	}
	w.m.setResult(w, st.ID, result)
	if result == Failure && (w.kind == Liveness || w.kind == Startup) {
		// The container is killed; its next runtime container starts over.
		w.onHold, w.resultRun = true, 0
	}
}
