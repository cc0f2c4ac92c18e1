package pods

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/wasmkube/wasmkube/runtime/oci"
)

// Labels on every runtime container, naming what it was made for (the
// keys kubelet uses for the same purpose).
const (
	labelPodUID        = "io.kubernetes.pod.uid"
	labelPodNamespace  = "io.kubernetes.pod.namespace"
	labelPodName       = "io.kubernetes.pod.name"
	labelContainerName = "io.kubernetes.container.name"
	labelAttempt       = "io.kubernetes.container.attempt"
)

// maxContainerID is containerd's limit on identifiers.
const maxContainerID = 76

// containerID names attempt n of a pod's container. The uid keeps ids of
// pods that share a name apart; a long container name is shortened with a
// hash so the id stays within containerd's limit.
func containerID(uid types.UID, name string, attempt int) string {
	id := fmt.Sprintf("%s-%d-%s", uid, attempt, name)
	if len(id) <= maxContainerID {
		return id
	}
	sum := sha256.Sum256([]byte(name))
	prefix := fmt.Sprintf("%s-%d-", uid, attempt)
	keep := maxContainerID - len(prefix) - 9
	return prefix + name[:keep] + "-" + hex.EncodeToString(sum[:4])
}

// attempt is one runtime container made for a pod's container. The agent
// keeps the latest attempt and the one before, as kubelet does, for
// lastState.
type attempt struct {
	id string
	n  int
	// startErr is why the runtime could not start it; such an attempt
	// counts as a failed run (upstream's StartError).
	startErr string
	state    oci.State // as last read from the runtime
	// message is the termination log's content, once read after the exit.
	message     string
	messageRead bool
	// killing is set while a failed liveness or startup probe has the
	// container being stopped, so syncs neither kill it twice nor probe it.
	killing atomic.Bool
}

// record is what the agent holds for one pod it runs.
type record struct {
	uid       types.UID
	namespace string
	name      string

	mu sync.Mutex
	// attempts of each container, oldest first.
	attempts map[string][]*attempt
	// waiting is why a container has no running attempt right now, when
	// that is an error (ErrImagePull, CreateContainerConfigError, ...).
	waiting map[string]*corev1.ContainerStateWaiting
	sandbox *sandbox
	// initialized latches once every regular init container succeeded, so
	// init containers are not rerun after their records are pruned.
	initialized bool
	// deadlineExceeded latches when activeDeadlineSeconds ran out.
	deadlineExceeded bool
	// terminating is set once a terminator owns the pod; syncs leave it
	// alone from then on. Atomic, so a sync can see it without waiting
	// for the terminator, which holds mu while it waits out the grace
	// period.
	terminating atomic.Bool
	// stopped is set when a pod in a terminal phase has had its containers
	// stopped and its sandbox removed.
	stopped bool

	// hookCancel ends a postStart hook the sync is waiting for (under mu),
	// so that deleting the pod need not wait for the hook.
	hookMu     sync.Mutex
	hookCancel context.CancelFunc
}

// setHookCancel records how to end the running postStart hook (nil: none).
func (r *record) setHookCancel(cancel context.CancelFunc) {
	r.hookMu.Lock()
	r.hookCancel = cancel
	r.hookMu.Unlock()
}

// cancelHook ends the running postStart hook, if any.
func (r *record) cancelHook() {
	r.hookMu.Lock()
	if r.hookCancel != nil {
		r.hookCancel()
	}
	r.hookMu.Unlock()
}

func newRecord(uid types.UID, namespace, name string) *record {
	return &record{
		uid: uid, namespace: namespace, name: name,
		attempts: map[string][]*attempt{},
		waiting:  map[string]*corev1.ContainerStateWaiting{},
	}
}

func (r *record) key() string { return r.namespace + "/" + r.name }

// latest is the newest attempt of container name, or nil.
func (r *record) latest(name string) *attempt {
	as := r.attempts[name]
	if len(as) == 0 {
		return nil
	}
	return as[len(as)-1]
}

// previous is the attempt before the latest, or nil.
func (r *record) previous(name string) *attempt {
	as := r.attempts[name]
	if len(as) < 2 {
		return nil
	}
	return as[len(as)-2]
}

// nextAttempt is the number the container's next runtime container gets,
// which is also the restartCount it will report.
func (r *record) nextAttempt(name string) int {
	if a := r.latest(name); a != nil {
		return a.n + 1
	}
	return 0
}

// add records a new attempt and returns the ones it made obsolete.
func (r *record) add(name string, a *attempt) (pruned []*attempt) {
	as := append(r.attempts[name], a)
	if len(as) > 2 {
		pruned = as[:len(as)-2]
		as = append([]*attempt(nil), as[len(as)-2:]...)
	}
	r.attempts[name] = as
	return pruned
}

// allAttempts lists every attempt of the pod.
func (r *record) allAttempts() []*attempt {
	var out []*attempt
	for _, as := range r.attempts {
		out = append(out, as...)
	}
	return out
}

// adopt rebuilds records from the runtime's containers after a restart of
// the agent: the labels say which pod and container each belongs to.
func adopt(containers []oci.Container) map[types.UID]*record {
	recs := map[types.UID]*record{}
	for _, c := range containers {
		uid := types.UID(c.Labels[labelPodUID])
		name := c.Labels[labelContainerName]
		n, err := strconv.Atoi(c.Labels[labelAttempt])
		if uid == "" || name == "" || err != nil {
			continue // not a pod container of this agent
		}
		rec := recs[uid]
		if rec == nil {
			rec = newRecord(uid, c.Labels[labelPodNamespace], c.Labels[labelPodName])
			recs[uid] = rec
		}
		rec.attempts[name] = append(rec.attempts[name], &attempt{id: c.ID, n: n})
	}
	for _, rec := range recs {
		for _, as := range rec.attempts {
			sort.Slice(as, func(i, j int) bool { return as[i].n < as[j].n })
		}
	}
	return recs
}

// containerLabels are the labels of attempt n of container name of pod.
func containerLabels(pod *corev1.Pod, name string, n int) map[string]string {
	return map[string]string{
		labelPodUID:        string(pod.UID),
		labelPodNamespace:  pod.Namespace,
		labelPodName:       pod.Name,
		labelContainerName: name,
		labelAttempt:       strconv.Itoa(n),
	}
}

// latestAttempts maps each container to its newest attempt.
func (r *record) latestAttempts() map[string]*attempt {
	out := map[string]*attempt{}
	for name, as := range r.attempts {
		if len(as) > 0 {
			out[name] = as[len(as)-1]
		}
	}
	return out
}
