package pods

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/wasmkube/wasmkube/runtime/oci"
)

// mtime is a timestamp as the API stores it (whole seconds), so that a
// status read back compares equal to the one written.
func mtime(t time.Time) metav1.Time { return metav1.NewTime(t).Rfc3339Copy() }

// buildStatus is the pod status the agent observes now.
func (m *Manager) buildStatus(pod *corev1.Pod, rec *record) corev1.PodStatus {
	old := pod.Status
	st := corev1.PodStatus{
		Phase:             old.Phase,
		Conditions:        append([]corev1.PodCondition(nil), old.Conditions...),
		QOSClass:          old.QOSClass,
		NominatedNodeName: old.NominatedNodeName,
		StartTime:         old.StartTime,
	}
	if st.StartTime == nil {
		now := mtime(time.Now())
		st.StartTime = &now
	}
	if ip := m.cfg.NodeIP; ip != nil {
		st.HostIP = ip.String()
		st.HostIPs = []corev1.HostIP{{IP: st.HostIP}}
	}
	if sb := rec.sandbox; sb != nil && sb.ip != nil {
		st.PodIP = sb.ip.String()
		st.PodIPs = []corev1.PodIP{{IP: st.PodIP}}
	} else {
		// A finished pod keeps the address it had, as upstream reports it.
		st.PodIP, st.PodIPs = old.PodIP, old.PodIPs
	}

	initializing := !rec.initialized
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		st.InitContainerStatuses = append(st.InitContainerStatuses, m.containerStatus(pod, rec, c, true, "PodInitializing"))
	}
	appWaiting := "ContainerCreating"
	if initializing {
		appWaiting = "PodInitializing"
	}
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		st.ContainerStatuses = append(st.ContainerStatuses, m.containerStatus(pod, rec, c, false, appWaiting))
	}

	if !isTerminal(st.Phase) {
		st.Phase = podPhase(pod, rec, st)
	}
	if rec.deadlineExceeded {
		st.Phase, st.Reason, st.Message = corev1.PodFailed, "DeadlineExceeded", "Pod was active on the node longer than the specified deadline"
	} else {
		st.Reason, st.Message = old.Reason, old.Message
	}
	setConditions(&st, pod, rec)
	return st
}

// containerStatus reports the latest attempt of c, the one before it as
// lastState, and any reason the container waits.
func (m *Manager) containerStatus(pod *corev1.Pod, rec *record, c *corev1.Container, init bool, waitingReason string) corev1.ContainerStatus {
	cs := corev1.ContainerStatus{Name: c.Name, Image: c.Image}
	a, prev := rec.latest(c.Name), rec.previous(c.Name)
	if a != nil {
		cs.RestartCount = int32(a.n)
		cs.ContainerID = "containerd://" + a.id
	}
	f := false
	cs.Started = &f
	if w := rec.waiting[c.Name]; w != nil {
		cs.State.Waiting = w.DeepCopy()
		if a != nil && ended(a) {
			cs.LastTerminationState.Terminated = m.terminated(pod, c, a)
		}
		return cs
	}
	if prev != nil && ended(prev) {
		cs.LastTerminationState.Terminated = m.terminated(pod, c, prev)
	}
	switch {
	case a == nil || (a.state.Status == oci.StatusCreated && a.startErr == ""):
		cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: waitingReason}
	case a.state.Status == oci.StatusRunning:
		cs.State.Running = &corev1.ContainerStateRunning{StartedAt: mtime(a.state.StartedAt)}
		started := m.prober.Started(c, a.id)
		cs.Started = &started
		// Ready as its readiness probe says (ready when running without
		// one); a regular init container never is.
		cs.Ready = (!init || isSidecar(c)) && m.prober.Ready(c, a.id)
	default:
		cs.State.Terminated = m.terminated(pod, c, a)
	}
	return cs
}

// terminated describes an ended attempt with upstream's reasons.
func (m *Manager) terminated(pod *corev1.Pod, c *corev1.Container, a *attempt) *corev1.ContainerStateTerminated {
	t := &corev1.ContainerStateTerminated{
		ExitCode:    int32(exitCode(a)),
		ContainerID: "containerd://" + a.id,
		StartedAt:   mtime(a.state.StartedAt),
		FinishedAt:  mtime(a.state.FinishedAt),
	}
	switch {
	case a.startErr != "":
		t.Reason, t.Message = "StartError", a.startErr
	case a.state.OOMKilled:
		t.Reason = "OOMKilled"
	case a.state.Status == oci.StatusUnknown:
		t.Reason = "Unknown"
		t.Message = "The container could not be located when the pod was terminated"
	case t.ExitCode == 0:
		t.Reason = "Completed"
	default:
		t.Reason = "Error"
	}
	if t.Message == "" {
		t.Message = m.terminationMessage(pod.UID, c.Name, a)
	}
	return t
}

// podPhase is upstream's getPhase: Pending until initialized (Failed if
// an init container failed for good), then from the app containers.
func podPhase(pod *corev1.Pod, rec *record, st corev1.PodStatus) corev1.PodPhase {
	never := pod.Spec.RestartPolicy == corev1.RestartPolicyNever
	if !rec.initialized {
		for i, cs := range st.InitContainerStatuses {
			if isSidecar(&pod.Spec.InitContainers[i]) {
				continue
			}
			if t := cs.State.Terminated; t != nil && t.ExitCode != 0 && never {
				return corev1.PodFailed
			}
		}
		return corev1.PodPending
	}
	var running, waiting, stopped, succeeded int
	for _, cs := range st.ContainerStatuses {
		switch {
		case cs.State.Running != nil:
			running++
		case cs.State.Terminated != nil:
			stopped++
			if cs.State.Terminated.ExitCode == 0 {
				succeeded++
			}
		case cs.LastTerminationState.Terminated != nil:
			stopped++
		default:
			waiting++
		}
	}
	switch {
	case waiting > 0:
		return corev1.PodPending
	case running > 0:
		return corev1.PodRunning
	case stopped > 0:
		switch {
		case pod.Spec.RestartPolicy == corev1.RestartPolicyAlways || pod.Spec.RestartPolicy == "":
			return corev1.PodRunning
		case stopped == succeeded:
			return corev1.PodSucceeded
		case never:
			return corev1.PodFailed
		}
		// OnFailure: the failed ones will restart, unless they are all
		// done for good already.
		for _, cs := range st.ContainerStatuses {
			if t := cs.State.Terminated; t == nil || t.ExitCode != 0 {
				return corev1.PodRunning
			}
		}
		return corev1.PodSucceeded
	}
	return corev1.PodPending
}

// setConditions sets the four conditions the agent owns, keeping the
// transition time of those that did not change.
func setConditions(st *corev1.PodStatus, pod *corev1.Pod, rec *record) {
	terminal := isTerminal(st.Phase)
	sandboxReady := rec.sandbox != nil && !terminal
	set(st, corev1.PodReadyToStartContainers, sandboxReady, "", "")

	var pendingInit []string
	for i, cs := range st.InitContainerStatuses {
		c := &pod.Spec.InitContainers[i]
		done := cs.State.Terminated != nil && cs.State.Terminated.ExitCode == 0
		if isSidecar(c) {
			done = cs.Started != nil && *cs.Started || rec.initialized
		}
		if !done && !rec.initialized {
			pendingInit = append(pendingInit, c.Name)
		}
	}
	if len(pendingInit) > 0 {
		set(st, corev1.PodInitialized, false, "ContainersNotInitialized", fmt.Sprintf("containers with incomplete status: [%s]", strings.Join(pendingInit, " ")))
	} else {
		set(st, corev1.PodInitialized, true, "", "")
	}

	var unready []string
	for _, cs := range st.ContainerStatuses {
		if !cs.Ready {
			unready = append(unready, cs.Name)
		}
	}
	for i, cs := range st.InitContainerStatuses {
		if isSidecar(&pod.Spec.InitContainers[i]) && !cs.Ready {
			unready = append(unready, cs.Name)
		}
	}
	switch {
	case terminal:
		set(st, corev1.ContainersReady, false, "PodCompleted", "")
		set(st, corev1.PodReady, false, "PodCompleted", "")
	case len(unready) > 0:
		msg := fmt.Sprintf("containers with unready status: [%s]", strings.Join(unready, " "))
		set(st, corev1.ContainersReady, false, "ContainersNotReady", msg)
		set(st, corev1.PodReady, false, "ContainersNotReady", msg)
	default:
		set(st, corev1.ContainersReady, true, "", "")
		set(st, corev1.PodReady, true, "", "")
	}
}

func set(st *corev1.PodStatus, t corev1.PodConditionType, ok bool, reason, msg string) {
	status := corev1.ConditionFalse
	if ok {
		status = corev1.ConditionTrue
	}
	c := corev1.PodCondition{Type: t, Status: status, Reason: reason, Message: msg}
	for i := range st.Conditions {
		if st.Conditions[i].Type != t {
			continue
		}
		c.LastTransitionTime = st.Conditions[i].LastTransitionTime
		if st.Conditions[i].Status != status {
			c.LastTransitionTime = mtime(time.Now())
		}
		c.LastProbeTime = st.Conditions[i].LastProbeTime
		st.Conditions[i] = c
		return
	}
	c.LastTransitionTime = mtime(time.Now())
	st.Conditions = append(st.Conditions, c)
}

// statusWriteTimeout bounds one status write.
const statusWriteTimeout = 10 * time.Second

// writeStatus stores the status when it differs from the pod's. A conflict
// is returned so the sync runs again on the newer pod.
func (m *Manager) writeStatus(ctx context.Context, pod *corev1.Pod, st corev1.PodStatus) error {
	if apiequality.Semantic.DeepEqual(pod.Status, st) {
		return nil
	}
	p := pod.DeepCopy()
	p.Status = st
	// Bounded, so that an API server that does not answer holds no
	// worker: the next sync writes the status again.
	ctx, cancel := context.WithTimeout(ctx, statusWriteTimeout)
	defer cancel()
	_, err := m.cfg.Client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("write status of %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	return nil
}
