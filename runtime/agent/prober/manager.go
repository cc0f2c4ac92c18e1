package prober

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/clock"
)

// Kind is a probe's purpose.
type Kind int

const (
	Liveness Kind = iota
	Readiness
	Startup
)

// String is the kind as upstream's events name it.
func (k Kind) String() string {
	switch k {
	case Liveness:
		return "Liveness"
	case Readiness:
		return "Readiness"
	}
	return "Startup"
}

// initial is the result a kind starts from for a new runtime container:
// not ready until proven, alive until proven otherwise, startup unknown.
func (k Kind) initial() Result {
	switch k {
	case Readiness:
		return Failure
	case Liveness:
		return Success
	}
	return Unknown
}

// probeOf is c's probe of kind k, or nil.
func probeOf(c *corev1.Container, k Kind) *corev1.Probe {
	switch k {
	case Liveness:
		return c.LivenessProbe
	case Readiness:
		return c.ReadinessProbe
	}
	return c.StartupProbe
}

// Config wires a Manager to the node.
type Config struct {
	// Exec runs exec probes and hooks in containers.
	Exec Execer
	// Recorder receives Unhealthy and ProbeWarning events.
	Recorder record.EventRecorder
	// OnChange is called with the pod's namespace/name key when one of
	// its probe results changes, so its status is written promptly.
	OnChange func(key string)
	// Clock tells the time for initial delays. Default: the real clock.
	Clock clock.PassiveClock
	Log   *slog.Logger
}

// ContainerState is what the pod worker knows of a container's latest
// runtime container.
type ContainerState struct {
	Name string
	// ID is the runtime container's id; a new id is a restart.
	ID        string
	Running   bool
	StartedAt time.Time
}

type workerKey struct {
	uid  types.UID
	name string
	kind Kind
}

type resultKey struct {
	id   string
	kind Kind
}

// Manager runs the probes of the node's containers.
type Manager struct {
	cfg   Config
	ctx   context.Context
	check func(ctx context.Context, k Kind, p *corev1.Probe, t Target) (Result, string, error)
	hooks *checker

	mu      sync.Mutex
	workers map[workerKey]*worker
	results map[resultKey]cached
}

// cached is a result and the pod it belongs to, so Remove finds it.
type cached struct {
	r   Result
	uid types.UID
}

// New makes a Manager whose workers run until ctx ends.
func New(ctx context.Context, cfg Config) *Manager {
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.OnChange == nil {
		cfg.OnChange = func(string) {}
	}
	probes := newChecker(cfg.Exec, agentName("kube-probe"))
	return &Manager{
		cfg: cfg,
		ctx: ctx,
		check: func(ctx context.Context, _ Kind, p *corev1.Probe, t Target) (Result, string, error) {
			return probes.check(ctx, p, t)
		},
		hooks:   newChecker(cfg.Exec, agentName("kube-lifecycle")),
		workers: map[workerKey]*worker{},
		results: map[resultKey]cached{},
	}
}

// Sync tells the Manager the state of pod's containers (init containers
// with restartPolicy Always among them), starting the workers of probes it
// has not seen and waking those whose container changed.
func (m *Manager) Sync(pod *corev1.Pod, podIP string, states []ContainerState) {
	if m == nil {
		return
	}
	byName := map[string]ContainerState{}
	for _, s := range states {
		byName[s.Name] = s
	}
	containers := make([]*corev1.Container, 0, len(pod.Spec.Containers)+len(pod.Spec.InitContainers))
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			containers = append(containers, c)
		}
	}
	for i := range pod.Spec.Containers {
		containers = append(containers, &pod.Spec.Containers[i])
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, c := range containers {
		for _, k := range []Kind{Liveness, Readiness, Startup} {
			p := probeOf(c, k)
			if p == nil {
				continue
			}
			key := workerKey{uid: pod.UID, name: c.Name, kind: k}
			w := m.workers[key]
			if w == nil {
				w = newWorker(m, pod, c, k)
				m.workers[key] = w
				go w.run(m.ctx)
			}
			w.update(byName[c.Name], podIP)
		}
	}
}

// Remove stops the probes of pod uid and forgets their results: the pod
// is being stopped.
func (m *Manager) Remove(uid types.UID) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for key, w := range m.workers {
		if key.uid != uid {
			continue
		}
		w.stop()
		delete(m.workers, key)
	}
	for key, c := range m.results {
		if c.uid == uid {
			delete(m.results, key)
		}
	}
}

// Started says whether container c, running as runtime container id, has
// started: its startup probe succeeded, or it has none.
func (m *Manager) Started(c *corev1.Container, id string) bool {
	if m == nil || c.StartupProbe == nil {
		return true
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.results[resultKey{id: id, kind: Startup}].r == Success
}

// Ready says whether the started container c, running as runtime
// container id, is ready: its readiness probe succeeded last, or it has
// none.
func (m *Manager) Ready(c *corev1.Container, id string) bool {
	if m == nil {
		return true
	}
	if !m.Started(c, id) {
		return false
	}
	if c.ReadinessProbe == nil {
		return true
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.results[resultKey{id: id, kind: Readiness}].r == Success
}

// Failed says whether runtime container id of c failed its liveness or
// startup probe and must be restarted, and which one.
func (m *Manager) Failed(c *corev1.Container, id string) (Kind, bool) {
	if m == nil {
		return 0, false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, k := range []Kind{Startup, Liveness} {
		if probeOf(c, k) != nil && m.results[resultKey{id: id, kind: k}].r == Failure {
			return k, true
		}
	}
	return 0, false
}

// setResult caches a result and tells the pod worker when it changed. A
// startup success wakes the container's other probes, which waited for it.
func (m *Manager) setResult(w *worker, id string, r Result) {
	m.mu.Lock()
	if m.workers[w.key] != w {
		m.mu.Unlock()
		return // removed while it probed
	}
	key := resultKey{id: id, kind: w.kind}
	old, had := m.results[key]
	m.results[key] = cached{r: r, uid: w.key.uid}
	if w.kind == Startup && r == Success && old.r != Success {
		for k, other := range m.workers {
			if k.uid == w.key.uid && k.name == w.key.name && k.kind != Startup {
				other.wake()
			}
		}
	}
	m.mu.Unlock()
	if !had || old.r != r {
		m.cfg.OnChange(w.podKey)
	}
}

func (m *Manager) startedLocked(w *worker, id string) bool {
	if w.container.StartupProbe == nil {
		return true
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.results[resultKey{id: id, kind: Startup}].r == Success
}

func (m *Manager) dropResult(id string, k Kind) {
	m.mu.Lock()
	delete(m.results, resultKey{id: id, kind: k})
	m.mu.Unlock()
}

// ContainerRef is the subject of a container's events, as kubelet makes
// it: the pod, with the container's field path, which kubectl describe
// prints before the message.
func ContainerRef(pod *corev1.Pod, c *corev1.Container) *corev1.ObjectReference {
	path := fmt.Sprintf("spec.containers{%s}", c.Name)
	for i := range pod.Spec.InitContainers {
		if pod.Spec.InitContainers[i].Name == c.Name {
			path = fmt.Sprintf("spec.initContainers{%s}", c.Name)
		}
	}
	return &corev1.ObjectReference{
		Kind: "Pod", APIVersion: "v1",
		Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID,
		ResourceVersion: pod.ResourceVersion,
		FieldPath:       path,
	}
}
