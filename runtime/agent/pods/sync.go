package pods

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"

	"github.com/wasmkube/wasmkube/runtime/agent/prober"
	"github.com/wasmkube/wasmkube/runtime/oci"
)

// orphanGrace is how long the containers of a pod whose object vanished
// (a forced delete) get to stop: kubelet's minimum grace period.
const orphanGrace = 2 * time.Second

// sync brings the pod named key to its spec. It is idempotent: each call
// reads what the runtime has and takes the next steps from there.
func (m *Manager) sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil // a malformed key never becomes valid
	}
	// Read before the lister: a pod missing from the checkpoints is not
	// known to be gone.
	authoritative := m.synced.Load()
	pod, err := m.podLister().Pods(ns).Get(name)
	if apierrors.IsNotFound(err) {
		pod = nil
	} else if err != nil {
		return err
	}
	if !authoritative && pod == nil {
		return nil
	}
	var keep types.UID
	if pod != nil {
		keep = pod.UID
	}
	// Earlier pods of this name whose objects are gone.
	if authoritative {
		for _, rec := range m.recordsOf(key, keep) {
			m.startTermination(ctx, rec, nil, orphanGrace, termOrphan)
		}
	}
	if pod == nil {
		return nil
	}

	rec := m.recordFor(pod)
	m.checkpoint(pod)
	if rec.terminating.Load() {
		return nil
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if pod.DeletionTimestamp != nil {
		m.startTermination(ctx, rec, pod, deletionGrace(pod), termDelete)
		return nil
	}
	if isTerminal(pod.Status.Phase) {
		if !rec.stopped {
			m.startTermination(ctx, rec, pod, specGrace(pod), termFinished)
		}
		return nil
	}
	if deadline, ok := activeDeadline(&pod.Spec, pod.Status.StartTime); ok && !time.Now().Before(deadline) {
		rec.deadlineExceeded = true
		m.recorder.Eventf(pod, corev1.EventTypeNormal, "DeadlineExceeded", "Pod was active on the node longer than the specified deadline")
		m.startTermination(ctx, rec, pod, specGrace(pod), termFinished)
		return nil
	}
	return m.syncRunning(ctx, pod, rec)
}

// syncRunning runs one pass of upstream's start order for a live pod and
// writes the status it sees.
func (m *Manager) syncRunning(ctx context.Context, pod *corev1.Pod, rec *record) error {
	if rec.sandbox == nil {
		sb, err := m.cfg.Sandboxes.Ensure(ctx, pod)
		if err != nil {
			m.recorder.Eventf(pod, corev1.EventTypeWarning, "FailedCreatePodSandBox", "Failed to create pod sandbox: %v", err)
			if serr := m.writeStatus(ctx, pod, m.buildStatus(pod, rec)); serr != nil {
				err = errors.Join(err, serr)
			}
			return fmt.Errorf("sandbox of %s: %w", rec.key(), err)
		}
		rec.sandbox = sb
	}
	mounts, volErr := m.cfg.Volumes.Setup(ctx, pod)
	if volErr != nil {
		m.mountFailed(pod, volErr)
	}
	m.refresh(ctx, rec)

	p := pass{m: m, pod: pod, rec: rec, mounts: mounts, canStart: volErr == nil}
	p.run(ctx)
	m.syncProbes(pod, rec)
	st := m.buildStatus(pod, rec)
	// From the status just built: the first sync sets startTime.
	if deadline, ok := activeDeadline(&pod.Spec, st.StartTime); ok {
		p.wakeAt(time.Until(deadline))
	}
	// Woken whether or not the status can be written: without the API
	// server the node still restarts its containers on time.
	if p.wake > 0 {
		m.queue.AddAfter(rec.key(), p.wake)
	}
	if err := m.writeStatus(ctx, pod, st); err != nil {
		return err
	}
	if volErr != nil {
		return fmt.Errorf("volumes of %s: %w", rec.key(), volErr)
	}
	return nil
}

// pass is one walk over a pod's containers in start order.
type pass struct {
	m        *Manager
	pod      *corev1.Pod
	rec      *record
	mounts   map[string]Mount
	canStart bool
	// wake is when the pod should be looked at again without an event
	// (a back-off running out); 0 means on events only.
	wake time.Duration
}

func (p *pass) wakeAt(d time.Duration) {
	if d <= 0 {
		d = time.Second
	}
	if p.wake == 0 || d < p.wake {
		p.wake = d
	}
}

// run starts init containers one by one (sidecars stay up), then the app
// containers once initialization is done.
func (p *pass) run(ctx context.Context) {
	spec := &p.pod.Spec
	initialized := p.rec.initialized
	for i := range spec.InitContainers {
		c := &spec.InitContainers[i]
		if isSidecar(c) {
			p.ensure(ctx, c, true)
			if a := p.rec.latest(c.Name); !initialized && (a == nil || a.state.Status != oci.StatusRunning || !p.m.prober.Started(c, a.id)) {
				return // later init containers wait for the sidecar to run and pass its startup probe
			}
			continue
		}
		if initialized {
			continue
		}
		a := p.rec.latest(c.Name)
		if a != nil && ended(a) && exitCode(a) == 0 {
			continue
		}
		if a != nil && ended(a) && spec.RestartPolicy == corev1.RestartPolicyNever {
			return // the pod has failed
		}
		p.ensure(ctx, c, true)
		return
	}
	p.rec.initialized = true
	for i := range spec.Containers {
		p.ensure(ctx, &spec.Containers[i], false)
	}
}

// ensure starts the container if it has never run, or restarts it if it
// ended and the restart policy says so and its back-off allows.
func (p *pass) ensure(ctx context.Context, c *corev1.Container, init bool) {
	a := p.rec.latest(c.Name)
	switch {
	case a == nil:
	case a.state.Status == oci.StatusRunning:
		p.killUnhealthy(ctx, c, a)
		return
	case a.state.Status == oci.StatusCreated && a.startErr == "":
		// Made but never started: an earlier agent stopped in between.
		p.m.startAttempt(ctx, p.pod, p.rec, c, a)
		return
	default: // ended
		if !shouldRestart(p.pod, c, init, exitCode(a)) {
			return
		}
		key := backOffKey(p.pod, c)
		finished := a.state.FinishedAt
		if p.m.crashBackOff.IsInBackOffSince(key, finished) {
			delay := p.m.crashBackOff.Get(key)
			p.rec.waiting[c.Name] = &corev1.ContainerStateWaiting{
				Reason: "CrashLoopBackOff",
				Message: fmt.Sprintf("back-off %s restarting failed container=%s pod=%s_%s(%s)",
					delay, c.Name, p.pod.Name, p.pod.Namespace, p.pod.UID),
			}
			p.m.recorder.Eventf(prober.ContainerRef(p.pod, c), corev1.EventTypeWarning, "BackOff", "Back-off restarting failed container %s in pod %s_%s(%s)",
				c.Name, p.pod.Name, p.pod.Namespace, p.pod.UID)
			p.wakeAt(delay - time.Since(finished))
			return
		}
		p.m.crashBackOff.Next(key, finished)
	}
	if !p.canStart {
		return
	}
	if retry := p.m.startContainer(ctx, p.pod, p.rec, c, p.mounts); retry > 0 {
		p.wakeAt(retry)
	}
}

// shouldRestart applies the restart policy to a container that ended.
func shouldRestart(pod *corev1.Pod, c *corev1.Container, init bool, code int) bool {
	if init {
		if isSidecar(c) {
			return true
		}
		return code != 0 && pod.Spec.RestartPolicy != corev1.RestartPolicyNever
	}
	switch pod.Spec.RestartPolicy {
	case corev1.RestartPolicyNever:
		return false
	case corev1.RestartPolicyOnFailure:
		return code != 0
	default:
		return true
	}
}

func backOffKey(pod *corev1.Pod, c *corev1.Container) string {
	return string(pod.UID) + "/" + c.Name
}

// isSidecar says whether an init container is a native sidecar.
func isSidecar(c *corev1.Container) bool {
	return c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
}

// ended says whether the attempt has run and stopped, or could not start.
func ended(a *attempt) bool {
	return a.startErr != "" || a.state.Status == oci.StatusExited || a.state.Status == oci.StatusUnknown
}

// exitCode of an ended attempt; a start failure counts as 128, as
// containerd reports a StartError.
func exitCode(a *attempt) int {
	switch {
	case a.startErr != "":
		return 128
	case a.state.Status == oci.StatusUnknown:
		return 255
	}
	return a.state.ExitCode
}

// refresh reads the state of every attempt that may have changed, and
// watches the running ones for their exit.
func (m *Manager) refresh(ctx context.Context, rec *record) {
	for _, a := range rec.allAttempts() {
		if a.startErr != "" || (a.state.Status == oci.StatusExited && a.state.ID != "") {
			continue // an exit does not change
		}
		st, err := m.cfg.Runtime.Status(ctx, a.id)
		if err != nil {
			m.log.Warn("pods: container status", "id", a.id, "err", err)
			st = oci.State{ID: a.id, Status: oci.StatusUnknown, FinishedAt: time.Now()}
		}
		a.state = st
		if st.Status == oci.StatusRunning {
			m.watchExit(ctx, rec.key(), a.id)
		}
	}
}

// watchExit queues the pod when the container's task exits.
func (m *Manager) watchExit(ctx context.Context, key, id string) {
	m.watchMu.Lock()
	if m.watched[id] {
		m.watchMu.Unlock()
		return
	}
	m.watched[id] = true
	m.watchMu.Unlock()
	ch, err := m.cfg.Runtime.Wait(ctx, id)
	if err != nil {
		m.watchMu.Lock()
		delete(m.watched, id)
		m.watchMu.Unlock()
		return
	}
	go func() {
		<-ch
		m.watchMu.Lock()
		delete(m.watched, id)
		m.watchMu.Unlock()
		m.queue.Add(key)
	}()
}

func isTerminal(p corev1.PodPhase) bool {
	return p == corev1.PodSucceeded || p == corev1.PodFailed
}

// activeDeadline is when activeDeadlineSeconds runs out, counted from the
// pod's startTime.
func activeDeadline(spec *corev1.PodSpec, start *metav1.Time) (time.Time, bool) {
	if spec.ActiveDeadlineSeconds == nil || start == nil {
		return time.Time{}, false
	}
	return start.Add(time.Duration(*spec.ActiveDeadlineSeconds) * time.Second), true
}

// deletionGrace is the grace period the API server granted the delete.
func deletionGrace(pod *corev1.Pod) time.Duration {
	if pod.DeletionGracePeriodSeconds != nil {
		return time.Duration(*pod.DeletionGracePeriodSeconds) * time.Second
	}
	return specGrace(pod)
}

func specGrace(pod *corev1.Pod) time.Duration {
	if pod.Spec.TerminationGracePeriodSeconds != nil {
		return time.Duration(*pod.Spec.TerminationGracePeriodSeconds) * time.Second
	}
	return 30 * time.Second
}

// volumeError is a volume manager's error about one volume.
type volumeError interface {
	error
	VolumeName() string
	Unwrap() error
}

// mountFailed records upstream's FailedMount event for each volume that
// could not be set up.
func (m *Manager) mountFailed(pod *corev1.Pod, err error) {
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	for _, e := range errs {
		var ve volumeError
		if errors.As(e, &ve) {
			m.recorder.Eventf(pod, corev1.EventTypeWarning, "FailedMount", "MountVolume.SetUp failed for volume %q : %v", ve.VolumeName(), ve.Unwrap())
			continue
		}
		m.recorder.Eventf(pod, corev1.EventTypeWarning, "FailedMount", "MountVolume.SetUp failed: %v", e)
	}
}
