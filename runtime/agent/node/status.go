package node

import (
	"maps"
	goruntime "runtime"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// defaultLabels are the well-known labels kubelet sets on its Node; the
// beta ones are still set upstream because old selectors use them.
func defaultLabels(name string) map[string]string {
	return map[string]string{
		corev1.LabelHostname:      name,
		corev1.LabelOSStable:      goruntime.GOOS,
		corev1.LabelArchStable:    goruntime.GOARCH,
		"beta.kubernetes.io/os":   goruntime.GOOS,
		"beta.kubernetes.io/arch": goruntime.GOARCH,
	}
}

// wantLabels are the labels this agent owns on its Node: the defaults,
// the wasm label when it runs wasm, then the caller's extra labels.
func (a *Agent) wantLabels() map[string]string {
	l := defaultLabels(a.cfg.Name)
	wl, _ := a.wasmMeta()
	maps.Copy(l, wl)
	maps.Copy(l, a.cfg.Labels)
	return l
}

// wantAnnotations are the annotations this agent sets on its Node.
func (a *Agent) wantAnnotations() map[string]string {
	// Volume attachment is the controllers' job here, as upstream by
	// default; tools look for this annotation.
	an := map[string]string{"volumes.kubernetes.io/controller-managed-attach-detach": "true"}
	_, wa := a.wasmMeta()
	maps.Copy(an, wa)
	return an
}

// staticStatus is the part of the status that only changes when the
// agent restarts: resources, addresses, identity.
func (a *Agent) staticStatus(u usage) corev1.NodeStatus {
	mi := a.info
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:              *resource.NewQuantity(int64(goruntime.NumCPU()), resource.DecimalSI),
		corev1.ResourceMemory:           *resource.NewQuantity(mi.memTotal, resource.BinarySI),
		corev1.ResourcePods:             *resource.NewQuantity(int64(a.cfg.MaxPods), resource.DecimalSI),
		corev1.ResourceEphemeralStorage: *resource.NewQuantity(u.fsCapacity, resource.BinarySI),
	}
	// As upstream, allocatable withholds the hard eviction thresholds: pods
	// scheduled into that headroom would only be evicted again.
	allocMem := max(mi.memTotal-a.cfg.Thresholds.MemoryAvailable, 0)
	allocFS := u.fsCapacity - int64(float64(u.fsCapacity)*a.cfg.Thresholds.NodeFSAvailable)
	allocatable := capacity.DeepCopy()
	allocatable[corev1.ResourceMemory] = *resource.NewQuantity(allocMem, resource.BinarySI)
	allocatable[corev1.ResourceEphemeralStorage] = *resource.NewQuantity(allocFS, resource.BinarySI)
	return corev1.NodeStatus{
		RuntimeHandlers: a.runtimeHandlers(),
		Capacity:        capacity,
		Allocatable:     allocatable,
		Addresses: []corev1.NodeAddress{
			{Type: corev1.NodeInternalIP, Address: a.cfg.NodeIP.String()},
			{Type: corev1.NodeHostName, Address: a.cfg.Name},
		},
		DaemonEndpoints: corev1.NodeDaemonEndpoints{
			KubeletEndpoint: corev1.DaemonEndpoint{Port: a.cfg.KubeletPort},
		},
		NodeInfo: corev1.NodeSystemInfo{
			MachineID:               mi.machineID,
			SystemUUID:              mi.systemUUID,
			BootID:                  mi.bootID,
			KernelVersion:           mi.kernelVersion,
			OSImage:                 mi.osImage,
			ContainerRuntimeVersion: a.cfg.RuntimeVersion,
			KubeletVersion:          a.cfg.KubeletVersion,
			OperatingSystem:         goruntime.GOOS,
			Architecture:            goruntime.GOARCH,
		},
	}
}

// condition is a computed condition before its timestamps are set.
type condition struct {
	typ     corev1.NodeConditionType
	status  corev1.ConditionStatus
	reason  string
	message string
}

// conditions evaluates the four kubelet conditions, in upstream's order,
// with upstream's reasons and messages, which tools and people match on.
func (a *Agent) conditions(u usage, readyErr error) []condition {
	t := a.cfg.Thresholds
	pick := func(typ corev1.NodeConditionType, pressure bool, yesReason, yesMsg, noReason, noMsg string) condition {
		if pressure {
			return condition{typ, corev1.ConditionTrue, yesReason, yesMsg}
		}
		return condition{typ, corev1.ConditionFalse, noReason, noMsg}
	}
	memPressure := u.memAvailable < t.MemoryAvailable
	diskPressure := u.fsCapacity > 0 && float64(u.fsAvailable) < float64(u.fsCapacity)*t.NodeFSAvailable
	pidPressure := u.pidLimit > 0 && float64(u.pidLimit-u.pidsInUse) < float64(u.pidLimit)*t.PIDAvailable
	ready := condition{corev1.NodeReady, corev1.ConditionTrue, "KubeletReady", "kubelet is posting ready status"}
	if readyErr != nil {
		ready = condition{corev1.NodeReady, corev1.ConditionFalse, "KubeletNotReady", readyErr.Error()}
	}
	return []condition{
		pick(corev1.NodeMemoryPressure, memPressure,
			"KubeletHasInsufficientMemory", "kubelet has insufficient memory available",
			"KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
		pick(corev1.NodeDiskPressure, diskPressure,
			"KubeletHasDiskPressure", "kubelet has disk pressure",
			"KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
		pick(corev1.NodePIDPressure, pidPressure,
			"KubeletHasInsufficientPID", "kubelet has insufficient PID available",
			"KubeletHasSufficientPID", "kubelet has sufficient PID available"),
		ready,
	}
}

// mergeConditions sets computed conditions into existing ones. Every
// condition gets a fresh heartbeat; the transition time only moves when
// the status changes, so it tells how long the node has been in it.
// Conditions of other types (set by other components) are kept.
func mergeConditions(existing []corev1.NodeCondition, computed []condition, now time.Time) []corev1.NodeCondition {
	ts := metav1.NewTime(now)
	out := make([]corev1.NodeCondition, 0, len(existing)+len(computed))
	owned := map[corev1.NodeConditionType]bool{}
	for _, c := range computed {
		owned[c.typ] = true
	}
	old := map[corev1.NodeConditionType]corev1.NodeCondition{}
	for _, c := range existing {
		if owned[c.Type] {
			old[c.Type] = c
		} else {
			out = append(out, c)
		}
	}
	for _, c := range computed {
		nc := corev1.NodeCondition{
			Type: c.typ, Status: c.status, Reason: c.reason, Message: c.message,
			LastHeartbeatTime: ts, LastTransitionTime: ts,
		}
		if prev, ok := old[c.typ]; ok && prev.Status == c.status && !prev.LastTransitionTime.IsZero() {
			nc.LastTransitionTime = prev.LastTransitionTime
		}
		out = append(out, nc)
	}
	return out
}

// statusChanged tells whether a status differs from the reported one in
// anything but heartbeats, the test upstream uses to skip writes.
func statusChanged(reported, next *corev1.NodeStatus) bool {
	strip := func(s *corev1.NodeStatus) *corev1.NodeStatus {
		c := s.DeepCopy()
		for i := range c.Conditions {
			c.Conditions[i].LastHeartbeatTime = metav1.Time{}
		}
		return c
	}
	return !equality.Semantic.DeepEqual(strip(reported), strip(next))
}
