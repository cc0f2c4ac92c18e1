package scheduler

import (
	"time"

	v1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	toolscache "k8s.io/client-go/tools/cache"
)

func asPod(obj any) *v1.Pod {
	if t, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	p, _ := obj.(*v1.Pod)
	return p
}

func asNode(obj any) *v1.Node {
	if t, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	n, _ := obj.(*v1.Node)
	return n
}

// terminal pods hold no resources on their node any more.
func terminal(p *v1.Pod) bool {
	return p.Status.Phase == v1.PodSucceeded || p.Status.Phase == v1.PodFailed
}

func (s *Scheduler) onPodAdd(obj any) {
	pod := asPod(obj)
	if pod == nil {
		return
	}
	if pod.Spec.NodeName != "" {
		if !terminal(pod) {
			s.cache.setPod(newPodInfo(pod))
		}
		return
	}
	if s.responsible(pod) {
		s.ctrl.EnqueueKey(podKey(pod))
	}
}

func (s *Scheduler) onPodUpdate(oldObj, newObj any) {
	old, pod := asPod(oldObj), asPod(newObj)
	if old == nil || pod == nil {
		return
	}
	if pod.Spec.NodeName != "" {
		if terminal(pod) {
			if s.cache.removePod(pod.UID) {
				s.moveAll()
			}
		} else {
			s.cache.setPod(newPodInfo(pod))
		}
		if old.Spec.NodeName == "" {
			s.dropUnschedulable(podKey(pod))
		}
		return
	}
	if !s.responsible(pod) {
		return
	}
	// Our own PodScheduled=False patch comes back as an update; retrying on
	// it would only fail again. Only a change to what scheduling reads
	// brings an unschedulable pod back.
	if s.isUnschedulable(podKey(pod)) && !schedulingInputsChanged(old, pod) {
		return
	}
	s.dropUnschedulable(podKey(pod))
	s.ctrl.EnqueueKey(podKey(pod))
}

func schedulingInputsChanged(old, pod *v1.Pod) bool {
	return !apiequality.Semantic.DeepEqual(old.Spec, pod.Spec) ||
		!apiequality.Semantic.DeepEqual(old.Labels, pod.Labels) ||
		!apiequality.Semantic.DeepEqual(old.Annotations, pod.Annotations)
}

func (s *Scheduler) onPodDelete(obj any) {
	pod := asPod(obj)
	if pod == nil {
		return
	}
	s.dropUnschedulable(podKey(pod))
	if s.cache.removePod(pod.UID) {
		s.moveAll()
	}
}

func (s *Scheduler) onNodeAdd(obj any) {
	if n := asNode(obj); n != nil {
		s.cache.setNode(n)
		s.moveAll()
	}
}

func (s *Scheduler) onNodeUpdate(oldObj, newObj any) {
	old, n := asNode(oldObj), asNode(newObj)
	if old == nil || n == nil {
		return
	}
	s.cache.setNode(n)
	// Heartbeats update nodes every few seconds; only a change that can
	// make a pod fit is worth retrying every unschedulable pod.
	if nodeSchedulingChanged(old, n) {
		s.moveAll()
	}
}

func nodeSchedulingChanged(old, n *v1.Node) bool {
	return old.Spec.Unschedulable != n.Spec.Unschedulable ||
		!apiequality.Semantic.DeepEqual(old.Labels, n.Labels) ||
		!apiequality.Semantic.DeepEqual(old.Spec.Taints, n.Spec.Taints) ||
		!apiequality.Semantic.DeepEqual(old.Status.Allocatable, n.Status.Allocatable) ||
		(readinessTaint(old) == nil) != (readinessTaint(n) == nil)
}

func (s *Scheduler) onNodeDelete(obj any) {
	if n := asNode(obj); n != nil {
		s.cache.removeNode(n.Name)
	}
}

func (s *Scheduler) currentSeq() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.moveSeq
}

// markUnschedulable parks a pod, unless the cluster changed while its cycle
// ran: then the change may already have made room, so it is retried soon.
func (s *Scheduler) markUnschedulable(key string, seq uint64) {
	s.mu.Lock()
	changed := s.moveSeq != seq
	if !changed {
		s.unschedulable[key] = struct{}{}
	}
	s.mu.Unlock()
	if changed {
		s.ctrl.EnqueueAfter(key, time.Second)
	}
}

func (s *Scheduler) isUnschedulable(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.unschedulable[key]
	return ok
}

func (s *Scheduler) dropUnschedulable(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.unschedulable, key)
}

// moveAll requeues every unschedulable pod after a cluster change.
func (s *Scheduler) moveAll() {
	s.mu.Lock()
	s.moveSeq++
	keys := make([]string, 0, len(s.unschedulable))
	for k := range s.unschedulable {
		keys = append(keys, k)
	}
	clear(s.unschedulable)
	s.mu.Unlock()
	for _, k := range keys {
		s.ctrl.EnqueueKey(k)
	}
}
