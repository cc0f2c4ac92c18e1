package simnode

import (
	"context"
	"fmt"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
)

// syncPod is the simulated kubelet and, with Options.Bind, the simulated
// scheduler: one idempotent step per pod event.
func (c *Cluster) syncPod(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return fmt.Errorf("pod key %q: %w", key, err)
	}
	pod, err := c.pods.Pods(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("pod %s: %w", key, err)
	}
	if pod.Spec.NodeName == "" {
		if c.opts.Bind && pod.DeletionTimestamp == nil {
			return c.bind(ctx, pod)
		}
		return nil
	}
	n, ok := c.running(pod.Spec.NodeName)
	if !ok {
		return nil
	}
	if pod.DeletionTimestamp != nil {
		// Containers "stop" at once; the kubelet then removes the object.
		err := c.client.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{
			GracePeriodSeconds: ptr.To[int64](0),
			Preconditions:      &metav1.Preconditions{UID: &pod.UID},
		})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			return fmt.Errorf("deleting pod %s: %w", key, err)
		}
		c.forgetIP(pod)
		return nil
	}
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return nil
	}
	now := time.Now()
	status, requeue := c.desiredStatus(pod, n, now)
	if requeue > 0 {
		c.ctrl.EnqueueAfter(key, requeue)
	}
	if statusEqual(&pod.Status, status) {
		return nil
	}
	updated := pod.DeepCopy()
	updated.Status = *status
	if _, err := c.client.CoreV1().Pods(ns).UpdateStatus(ctx, updated, metav1.UpdateOptions{}); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("pod %s status: %w", key, err)
	}
	return nil
}

// bind places a pod nobody scheduled on the next running node whose taints
// it tolerates and whose labels match its nodeSelector.
func (c *Cluster) bind(ctx context.Context, pod *corev1.Pod) error {
	target := c.pickNode(pod)
	if target == "" {
		return fmt.Errorf("no simulated node fits pod %s/%s", pod.Namespace, pod.Name)
	}
	err := c.client.CoreV1().Pods(pod.Namespace).Bind(ctx, &corev1.Binding{
		ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace, UID: pod.UID},
		Target:     corev1.ObjectReference{Kind: "Node", Name: target},
	}, metav1.CreateOptions{})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		// Gone, or bound by someone else meanwhile: the next event decides.
		return nil
	}
	if err != nil {
		return fmt.Errorf("binding pod %s/%s to %s: %w", pod.Namespace, pod.Name, target, err)
	}
	return nil
}

func (c *Cluster) pickNode(pod *corev1.Pod) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	for range c.order {
		name := c.order[c.next%len(c.order)]
		c.next++
		n := c.nodes[name]
		if n.stopped || !c.fits(pod, name) {
			continue
		}
		return name
	}
	return ""
}

func (c *Cluster) fits(pod *corev1.Pod, name string) bool {
	var spec *NodeSpec
	for i := range c.opts.Nodes {
		if c.opts.Nodes[i].Name == name {
			spec = &c.opts.Nodes[i]
		}
	}
	if spec == nil {
		return false
	}
	nodeLabels := labels.Set{corev1.LabelHostname: name}
	for k, v := range spec.Labels {
		nodeLabels[k] = v
	}
	if !labels.SelectorFromSet(pod.Spec.NodeSelector).Matches(nodeLabels) {
		return false
	}
	for i := range spec.Taints {
		t := &spec.Taints[i]
		if t.Effect == corev1.TaintEffectPreferNoSchedule {
			continue
		}
		tolerated := false
		for j := range pod.Spec.Tolerations {
			if pod.Spec.Tolerations[j].ToleratesTaint(klog.Background(), t, false) {
				tolerated = true
				break
			}
		}
		if !tolerated {
			return false
		}
	}
	return true
}

// desiredStatus is the status a kubelet would report now, and when the pod
// must be looked at again (readiness after ReadyDelay, exit after run-for).
func (c *Cluster) desiredStatus(pod *corev1.Pod, n *node, now time.Time) (*corev1.PodStatus, time.Duration) {
	st := pod.Status.DeepCopy()
	started := now
	if st.StartTime != nil {
		started = st.StartTime.Time
	} else {
		st.StartTime = &metav1.Time{Time: now.Truncate(time.Second)}
		started = st.StartTime.Time
	}
	st.HostIP = n.hostIP
	st.HostIPs = []corev1.HostIP{{IP: n.hostIP}}
	if pod.Spec.HostNetwork {
		st.PodIP = n.hostIP
	} else {
		st.PodIP = c.podIP(pod, n)
	}
	st.PodIPs = []corev1.PodIP{{IP: st.PodIP}}
	if st.QOSClass == "" {
		st.QOSClass = corev1.PodQOSBestEffort
	}

	var requeue time.Duration
	ready := now.Sub(started) >= c.opts.ReadyDelay
	if !ready {
		requeue = c.opts.ReadyDelay - now.Sub(started) + 10*time.Millisecond
	}
	codes, exits := exitCodes(pod)
	finished := false
	if exits {
		runFor, _ := time.ParseDuration(pod.Annotations[AnnotationRunFor])
		if left := started.Add(runFor).Sub(now); left > 0 {
			if requeue == 0 || left < requeue {
				requeue = left + 10*time.Millisecond
			}
		} else {
			finished = true
		}
	}

	startedAt := metav1.Time{Time: started}
	st.InitContainerStatuses = nil
	for _, ctr := range pod.Spec.InitContainers {
		st.InitContainerStatuses = append(st.InitContainerStatuses, corev1.ContainerStatus{
			Name: ctr.Name, Image: ctr.Image, ImageID: imageID(ctr.Image),
			ContainerID: containerID(pod, ctr.Name), Ready: true,
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
				ExitCode: 0, Reason: "Completed", StartedAt: startedAt, FinishedAt: startedAt,
				ContainerID: containerID(pod, ctr.Name),
			}},
		})
	}
	st.ContainerStatuses = nil
	failed := false
	for _, ctr := range pod.Spec.Containers {
		cs := corev1.ContainerStatus{
			Name: ctr.Name, Image: ctr.Image, ImageID: imageID(ctr.Image),
			ContainerID: containerID(pod, ctr.Name),
		}
		if finished {
			code := codes[ctr.Name]
			reason := "Completed"
			if code != 0 {
				reason, failed = "Error", true
			}
			finishedAt := metav1.Time{Time: started.Add(mustDuration(pod.Annotations[AnnotationRunFor]))}
			cs.State.Terminated = &corev1.ContainerStateTerminated{
				ExitCode: code, Reason: reason, StartedAt: startedAt, FinishedAt: finishedAt,
				ContainerID: cs.ContainerID,
			}
			cs.Started = ptr.To(false)
		} else {
			cs.State.Running = &corev1.ContainerStateRunning{StartedAt: startedAt}
			cs.Started = ptr.To(true)
			cs.Ready = ready
		}
		st.ContainerStatuses = append(st.ContainerStatuses, cs)
	}

	switch {
	case !finished:
		st.Phase = corev1.PodRunning
	case failed:
		st.Phase = corev1.PodFailed
	default:
		st.Phase = corev1.PodSucceeded
	}
	podReady := ready && !finished
	reason := ""
	if finished {
		reason = "PodCompleted"
	} else if !ready {
		reason = "ContainersNotReady"
	}
	setCondition(st, corev1.PodScheduled, true, "", now)
	setCondition(st, corev1.PodInitialized, true, "", now)
	setCondition(st, corev1.ContainersReady, podReady, reason, now)
	setCondition(st, corev1.PodReady, podReady, reason, now)
	return st, requeue
}

// exitCodes reads the exit-code annotations; ok is true when every
// container has one, which is when the pod will end.
func exitCodes(pod *corev1.Pod) (map[string]int32, bool) {
	codes := map[string]int32{}
	all, hasAll := pod.Annotations[AnnotationExitCode]
	for _, ctr := range pod.Spec.Containers {
		v, ok := pod.Annotations[AnnotationExitCode+"."+ctr.Name]
		if !ok {
			v, ok = all, hasAll
		}
		if !ok {
			return nil, false
		}
		code, err := strconv.ParseInt(v, 10, 32)
		if err != nil {
			return nil, false
		}
		codes[ctr.Name] = int32(code)
	}
	return codes, len(pod.Spec.Containers) > 0
}

func mustDuration(s string) time.Duration {
	d, _ := time.ParseDuration(s)
	return d
}

func setCondition(st *corev1.PodStatus, t corev1.PodConditionType, ok bool, reason string, now time.Time) {
	status := corev1.ConditionFalse
	if ok {
		status = corev1.ConditionTrue
	}
	for i := range st.Conditions {
		c := &st.Conditions[i]
		if c.Type != t {
			continue
		}
		if c.Status != status {
			c.Status, c.LastTransitionTime = status, metav1.Time{Time: now.Truncate(time.Second)}
		}
		c.Reason = reason
		return
	}
	st.Conditions = append(st.Conditions, corev1.PodCondition{
		Type: t, Status: status, Reason: reason, LastTransitionTime: metav1.Time{Time: now.Truncate(time.Second)},
	})
}

func (c *Cluster) podIP(pod *corev1.Pod, n *node) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ip, ok := c.podIPs[string(pod.UID)]; ok {
		return ip
	}
	if pod.Status.PodIP != "" {
		c.podIPs[string(pod.UID)] = pod.Status.PodIP
		return pod.Status.PodIP
	}
	nodeName := pod.Spec.NodeName
	c.nextIP[nodeName]++
	k := c.nextIP[nodeName]
	ip := fmt.Sprintf("10.244.%d.%d", n.index, k%253+2)
	c.podIPs[string(pod.UID)] = ip
	return ip
}

func (c *Cluster) forgetIP(pod *corev1.Pod) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.podIPs, string(pod.UID))
}

func containerID(pod *corev1.Pod, name string) string {
	return fmt.Sprintf("simnode://%s-%s", pod.UID, name)
}

func imageID(image string) string { return "simnode://" + image }

// statusEqual compares what the simulation writes; timestamps of unchanged
// conditions are kept by setCondition, so a deep comparison is exact.
func statusEqual(a, b *corev1.PodStatus) bool {
	return apiequality.Semantic.DeepEqual(a, b)
}
