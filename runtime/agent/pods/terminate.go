package pods

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"

	"github.com/wasmkube/wasmkube/runtime/agent/prober"
	"github.com/wasmkube/wasmkube/runtime/oci"
)

// termination says why a pod's containers are being stopped, which
// decides what happens after.
type termination int

const (
	// termDelete: the API server set deletionTimestamp. Everything goes,
	// then the agent confirms with a delete at grace 0.
	termDelete termination = iota
	// termFinished: the pod reached a terminal phase (or ran out its
	// active deadline). Containers stop and the sandbox goes; the
	// containers' records and logs stay until the pod is deleted.
	termFinished
	// termOrphan: the pod object is gone (a forced delete, or a pod of an
	// earlier agent). Everything goes.
	termOrphan
)

// startTermination hands the pod to a terminator, once.
func (m *Manager) startTermination(ctx context.Context, rec *record, pod *corev1.Pod, grace time.Duration, why termination) {
	if !rec.terminating.CompareAndSwap(false, true) {
		return
	}
	// Probes end with the pod's life: a liveness failure must not race
	// the termination with a restart.
	m.prober.Remove(rec.uid)
	m.terminators.Add(1)
	go func() {
		defer m.terminators.Done()
		err := m.terminate(ctx, rec, pod, grace, why)
		if err != nil && ctx.Err() == nil {
			m.log.Info("pods: termination failed, will retry", "pod", rec.key(), "err", err)
		}
		if why == termFinished || err != nil {
			// A finished pod stays the agent's until deleted; a failed
			// termination is retried by the next sync.
			rec.terminating.Store(false)
			m.queue.AddAfter(rec.key(), time.Second)
		}
	}()
}

// terminate stops the pod's containers and takes down what the reason
// calls for. It holds the record for the whole grace period; syncs skip a
// terminating record without waiting for it.
func (m *Manager) terminate(ctx context.Context, rec *record, pod *corev1.Pod, grace time.Duration, why termination) error {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if pod != nil && why != termFinished {
		for name, a := range rec.latestAttempts() {
			if c := specOf(pod, name); c != nil && a.state.Status == oci.StatusRunning {
				m.recorder.Eventf(prober.ContainerRef(pod, c), corev1.EventTypeNormal, "Killing", "Stopping container %s", name)
			}
		}
	}
	m.stopAll(ctx, pod, rec, grace)
	m.refresh(ctx, rec)

	var errs []error
	if rec.sandbox != nil || why != termFinished {
		if err := m.cfg.Sandboxes.Remove(ctx, rec.uid); err != nil {
			errs = append(errs, err)
		} else {
			rec.sandbox = nil
		}
	}
	if pod != nil {
		if err := m.writeFinalStatus(ctx, pod, rec); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if why == termFinished {
		rec.stopped = true
		return nil
	}
	if err := m.removeAll(ctx, rec); err != nil {
		return err
	}
	if why == termDelete {
		// The containers are gone: let the object go.
		err := m.cfg.Client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
			GracePeriodSeconds: new(int64),
			Preconditions:      metav1.NewUIDPreconditions(string(pod.UID)),
		})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			return fmt.Errorf("confirm deletion of %s: %w", rec.key(), err)
		}
	}
	m.forget(rec.uid)
	return nil
}

// stopAll stops app containers first and init containers (sidecars) after
// them, as upstream orders it, each within the grace period: preStop hook,
// SIGTERM, then SIGKILL.
func (m *Manager) stopAll(ctx context.Context, pod *corev1.Pod, rec *record, grace time.Duration) {
	deadline := time.Now().Add(grace)
	type named struct {
		name string
		a    *attempt
	}
	var app, rest []named
	initNames := map[string]bool{}
	if pod != nil {
		for _, c := range pod.Spec.InitContainers {
			initNames[c.Name] = true
		}
	}
	for name, a := range rec.latestAttempts() {
		if initNames[name] {
			rest = append(rest, named{name, a})
		} else {
			app = append(app, named{name, a})
		}
	}
	ip := m.podIP(rec)
	for _, group := range [][]named{app, rest} {
		end := deadline
		if time.Until(end) < orphanGrace {
			end = time.Now().Add(orphanGrace)
		}
		var wg sync.WaitGroup
		for _, n := range group {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := m.stopContainer(ctx, pod, specOf(pod, n.name), n.a.id, ip, end); err != nil {
					m.log.Debug("pods: stop container", "id", n.a.id, "err", err)
				}
			}()
		}
		wg.Wait()
	}
}

// writeFinalStatus records the terminal phase the pod ends in before its
// object is removed, as kubelet does: Succeeded if every app container
// exited 0, else Failed.
func (m *Manager) writeFinalStatus(ctx context.Context, pod *corev1.Pod, rec *record) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := m.cfg.Client.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) || (err == nil && cur.UID != pod.UID) {
			return nil
		}
		if err == nil && isTerminal(cur.Status.Phase) {
			// Written when the pod finished. Reading the containers again
			// now could only lose detail (an OOM kill is known from the
			// pod cgroup, which is gone by now).
			return nil
		}
		if err != nil {
			return err
		}
		st := m.buildStatus(cur, rec)
		if !isTerminal(st.Phase) {
			st.Phase = corev1.PodSucceeded
			for _, cs := range st.ContainerStatuses {
				if t := cs.State.Terminated; t == nil || t.ExitCode != 0 {
					st.Phase = corev1.PodFailed
				}
			}
			setConditions(&st, cur, rec)
		}
		return m.writeStatus(ctx, cur, st)
	})
}

// removeAll deletes the pod's containers, volumes, files and logs.
func (m *Manager) removeAll(ctx context.Context, rec *record) error {
	var errs []error
	for _, a := range rec.allAttempts() {
		if err := m.cfg.Runtime.Remove(ctx, a.id); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for name := range rec.attempts {
		m.crashBackOff.DeleteEntry(string(rec.uid) + "/" + name)
	}
	rec.attempts = map[string][]*attempt{}
	if err := m.cfg.Volumes.TearDown(rec.uid); err != nil {
		return fmt.Errorf("volumes of %s: %w", rec.key(), err)
	}
	if err := m.cfg.Sandboxes.Forget(rec.uid); err != nil {
		return err
	}
	if err := os.RemoveAll(m.logDir(rec.namespace, rec.name, rec.uid)); err != nil {
		return fmt.Errorf("logs of %s: %w", rec.key(), err)
	}
	return nil
}
