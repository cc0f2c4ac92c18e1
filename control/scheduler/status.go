package scheduler

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	v1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

var metav1CreateOptions = metav1.CreateOptions{}

// setScheduledCondition records PodScheduled=False on the pod, as upstream
// does, with a strategic merge patch keyed by condition type so that other
// conditions are left alone. An identical condition is not rewritten: every
// retry would otherwise cost a write and wake every pod watcher.
func (s *Scheduler) setScheduledCondition(ctx context.Context, pod *v1.Pod, reason, msg string) {
	now := metav1.NewTime(time.Now())
	transition := now
	for _, c := range pod.Status.Conditions {
		if c.Type != v1.PodScheduled {
			continue
		}
		if c.Status == v1.ConditionFalse && c.Reason == reason && c.Message == msg {
			return
		}
		if c.Status == v1.ConditionFalse {
			transition = c.LastTransitionTime
		}
	}
	patch := map[string]any{"status": map[string]any{"conditions": []map[string]any{{
		"type":               v1.PodScheduled,
		"status":             v1.ConditionFalse,
		"reason":             reason,
		"message":            msg,
		"lastProbeTime":      nil,
		"lastTransitionTime": transition,
	}}}}
	data, err := json.Marshal(patch)
	if err != nil {
		s.log.Error("encoding condition patch", "err", err)
		return
	}
	_, err = s.client.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.StrategicMergePatchType, data, metav1.PatchOptions{}, "status")
	if err != nil && !apierrors.IsNotFound(err) && ctx.Err() == nil {
		s.log.Info("cannot set PodScheduled condition", "pod", podKey(pod), "err", err)
	}
}

// EnsureWasmRuntimeClass creates the RuntimeClass "wasm" (handler "wasm",
// scheduling.nodeSelector wasmkube.io/wasm=true) unless one exists; an
// existing one is left as the administrator made it.
func EnsureWasmRuntimeClass(ctx context.Context, client kubernetes.Interface) error {
	rc := &nodev1.RuntimeClass{
		ObjectMeta: metav1.ObjectMeta{Name: WasmRuntimeClass},
		Handler:    WasmRuntimeClass,
		Scheduling: &nodev1.Scheduling{NodeSelector: map[string]string{WasmNodeLabel: "true"}},
	}
	_, err := client.NodeV1().RuntimeClasses().Create(ctx, rc, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating RuntimeClass %q: %w", WasmRuntimeClass, err)
	}
	return nil
}
