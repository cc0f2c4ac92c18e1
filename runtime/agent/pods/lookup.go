package pods

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"

	"k8s.io/apimachinery/pkg/types"
)

// ErrNotFound marks a lookup of a pod or container the node does not have
// (or not in the state asked for).
var ErrNotFound = errors.New("not found")

// ErrPodNotFound marks a lookup of a pod the node does not run; such an
// error is also ErrNotFound.
var ErrPodNotFound = errors.New("pod not found")

// lookupError reads as the kubelet's message alone, and is ErrNotFound
// (and ErrPodNotFound when the pod is missing).
type lookupError struct {
	msg        string
	podMissing bool
}

func (e *lookupError) Error() string { return e.msg }

func (e *lookupError) Is(target error) bool {
	return target == ErrNotFound || (e.podMissing && target == ErrPodNotFound)
}

func notFound(format string, args ...any) error {
	return &lookupError{msg: fmt.Sprintf(format, args...)}
}

func podNotFound(pod string) error {
	return &lookupError{msg: fmt.Sprintf("pod %q does not exist", pod), podMissing: true}
}

// ContainerRef is one attempt of a pod's container as the node runs it,
// for the agent's streaming server.
type ContainerRef struct {
	// ID is the runtime container's id.
	ID string
	// LogPath is its log file (the current one; rotated ones sit beside
	// it).
	LogPath string
	PodUID  types.UID
}

// findRecord returns the record of the pod namespace/name: the one of the
// pod object the node sees now when there are several (an earlier pod of
// the same name whose removal is under way).
func (m *Manager) findRecord(namespace, name string) *record {
	var want types.UID
	if m.lister != nil {
		if p, err := m.lister.Pods(namespace).Get(name); err == nil {
			want = p.UID
		}
	}
	key := namespace + "/" + name
	m.mu.Lock()
	defer m.mu.Unlock()
	if rec := m.records[want]; rec != nil && want != "" {
		return rec
	}
	for _, rec := range m.records {
		if rec.key() == key {
			return rec
		}
	}
	return nil
}

// LookupContainer finds the latest attempt of a pod's container, or with
// previous the one before it, as `kubectl logs --previous` wants. Errors
// wrap ErrNotFound and read as the kubelet's.
func (m *Manager) LookupContainer(namespace, pod, container string, previous bool) (ContainerRef, error) {
	rec := m.findRecord(namespace, pod)
	if rec == nil {
		return ContainerRef{}, podNotFound(pod)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	a := rec.latest(container)
	if previous {
		a = rec.previous(container)
		if a == nil {
			return ContainerRef{}, notFound("previous terminated container %q in pod %q not found", container, pod)
		}
	}
	if a == nil {
		reason := "ContainerCreating"
		if w := rec.waiting[container]; w != nil && w.Reason != "" {
			reason = w.Reason
		}
		return ContainerRef{}, notFound("container %q in pod %q is waiting to start: %s", container, pod, reason)
	}
	logPath := a.state.LogPath
	if logPath == "" {
		// An adopted attempt not yet synced: the path is the one
		// containerSpec gave it.
		logPath = filepath.Join(m.logDir(rec.namespace, rec.name, rec.uid), container, strconv.Itoa(a.n)+".log")
	}
	return ContainerRef{ID: a.id, LogPath: logPath, PodUID: rec.uid}, nil
}

// PodNetns is the network namespace of a running pod's sandbox: "" for a
// pod on the host network.
func (m *Manager) PodNetns(namespace, pod string) (string, types.UID, error) {
	rec := m.findRecord(namespace, pod)
	if rec == nil {
		return "", "", podNotFound(pod)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.sandbox == nil {
		return "", "", notFound("pod %q is not running", pod)
	}
	if rec.sandbox.hostNetwork {
		return "", rec.uid, nil
	}
	return rec.sandbox.netnsPath, rec.uid, nil
}
