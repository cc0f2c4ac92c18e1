package pods

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/wasmkube/wasmkube/runtime/oci"
)

const testUID = types.UID("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0")

func TestContainerIDFitsContainerd(t *testing.T) {
	short := containerID(testUID, "app", 3)
	if short != string(testUID)+"-3-app" {
		t.Errorf("short id %q", short)
	}
	long := strings.Repeat("x", 63)
	a, b := containerID(testUID, long, 12), containerID(testUID, long[:62]+"y", 12)
	if len(a) > maxContainerID || len(b) > maxContainerID {
		t.Errorf("ids %q (%d) and %q (%d) exceed %d", a, len(a), b, len(b), maxContainerID)
	}
	if a == b {
		t.Errorf("two long names share the id %q", a)
	}
}

func TestAdoptGroupsAttemptsByLabels(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns", UID: testUID}}
	cs := []oci.Container{
		{ID: "b", Labels: containerLabels(pod, "app", 1)},
		{ID: "a", Labels: containerLabels(pod, "app", 0)},
		{ID: "c", Labels: containerLabels(pod, "side", 0)},
		{ID: "foreign", Labels: map[string]string{"x": "y"}},
	}
	recs := adopt(cs)
	rec := recs[testUID]
	if len(recs) != 1 || rec == nil {
		t.Fatalf("records %v", recs)
	}
	if rec.key() != "ns/web" || rec.latest("app").id != "b" || rec.previous("app").id != "a" || rec.latest("side").id != "c" {
		t.Errorf("record %+v: want app attempts a,b and side c", rec.attempts)
	}
	if rec.nextAttempt("app") != 2 || rec.nextAttempt("new") != 0 {
		t.Errorf("next attempts %d, %d", rec.nextAttempt("app"), rec.nextAttempt("new"))
	}
	pruned := rec.add("app", &attempt{id: "d", n: 2})
	if len(pruned) != 1 || pruned[0].id != "a" || len(rec.attempts["app"]) != 2 {
		t.Errorf("add pruned %v, kept %v", pruned, rec.attempts["app"])
	}
}

func TestShouldRestart(t *testing.T) {
	always := corev1.ContainerRestartPolicyAlways
	sidecar := &corev1.Container{Name: "s", RestartPolicy: &always}
	plain := &corev1.Container{Name: "c"}
	for _, c := range []struct {
		policy corev1.RestartPolicy
		c      *corev1.Container
		init   bool
		code   int
		want   bool
	}{
		{corev1.RestartPolicyAlways, plain, false, 0, true},
		{corev1.RestartPolicyOnFailure, plain, false, 0, false},
		{corev1.RestartPolicyOnFailure, plain, false, 1, true},
		{corev1.RestartPolicyNever, plain, false, 1, false},
		{corev1.RestartPolicyNever, plain, true, 1, false},
		{corev1.RestartPolicyAlways, plain, true, 1, true},
		{corev1.RestartPolicyAlways, plain, true, 0, false},
		{corev1.RestartPolicyNever, sidecar, true, 0, true},
	} {
		pod := &corev1.Pod{Spec: corev1.PodSpec{RestartPolicy: c.policy}}
		if got := shouldRestart(pod, c.c, c.init, c.code); got != c.want {
			t.Errorf("policy %s init=%v sidecar=%v code %d: restart %v, want %v", c.policy, c.init, isSidecar(c.c), c.code, got, c.want)
		}
	}
}

func running() corev1.ContainerStatus {
	return corev1.ContainerStatus{State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}
}

func exited(code int32) corev1.ContainerStatus {
	return corev1.ContainerStatus{State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code}}}
}

func crashLooping() corev1.ContainerStatus {
	return corev1.ContainerStatus{
		State:                corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}},
		LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1}},
	}
}

func creating() corev1.ContainerStatus {
	return corev1.ContainerStatus{State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}}
}

func TestPodPhase(t *testing.T) {
	for _, c := range []struct {
		name        string
		policy      corev1.RestartPolicy
		initialized bool
		init, app   []corev1.ContainerStatus
		want        corev1.PodPhase
	}{
		{"initializing", corev1.RestartPolicyAlways, false, []corev1.ContainerStatus{running()}, []corev1.ContainerStatus{creating()}, corev1.PodPending},
		{"init failed, never", corev1.RestartPolicyNever, false, []corev1.ContainerStatus{exited(1)}, []corev1.ContainerStatus{creating()}, corev1.PodFailed},
		{"init failed, restarts", corev1.RestartPolicyAlways, false, []corev1.ContainerStatus{exited(1)}, []corev1.ContainerStatus{creating()}, corev1.PodPending},
		{"creating", corev1.RestartPolicyAlways, true, nil, []corev1.ContainerStatus{running(), creating()}, corev1.PodPending},
		{"running", corev1.RestartPolicyAlways, true, nil, []corev1.ContainerStatus{running(), exited(0)}, corev1.PodRunning},
		{"crash loop", corev1.RestartPolicyAlways, true, nil, []corev1.ContainerStatus{crashLooping()}, corev1.PodRunning},
		{"all done, always", corev1.RestartPolicyAlways, true, nil, []corev1.ContainerStatus{exited(0)}, corev1.PodRunning},
		{"succeeded", corev1.RestartPolicyOnFailure, true, nil, []corev1.ContainerStatus{exited(0), exited(0)}, corev1.PodSucceeded},
		{"failed, never", corev1.RestartPolicyNever, true, nil, []corev1.ContainerStatus{exited(0), exited(2)}, corev1.PodFailed},
		{"failed, on failure restarts", corev1.RestartPolicyOnFailure, true, nil, []corev1.ContainerStatus{exited(0), exited(2)}, corev1.PodRunning},
	} {
		t.Run(c.name, func(t *testing.T) {
			pod := &corev1.Pod{Spec: corev1.PodSpec{RestartPolicy: c.policy}}
			for range c.init {
				pod.Spec.InitContainers = append(pod.Spec.InitContainers, corev1.Container{Name: "init"})
			}
			rec := newRecord(testUID, "ns", "p")
			rec.initialized = c.initialized
			st := corev1.PodStatus{InitContainerStatuses: c.init, ContainerStatuses: c.app}
			if got := podPhase(pod, rec, st); got != c.want {
				t.Errorf("phase %s, want %s", got, c.want)
			}
		})
	}
}

func TestConditionsKeepTransitionTimes(t *testing.T) {
	pod := &corev1.Pod{Spec: corev1.PodSpec{
		InitContainers: []corev1.Container{{Name: "setup"}},
		Containers:     []corev1.Container{{Name: "a"}, {Name: "b"}},
	}}
	rec := newRecord(testUID, "ns", "p")
	rec.sandbox = &sandbox{}
	long := metav1.NewTime(time.Now().Add(-time.Hour)).Rfc3339Copy()
	st := corev1.PodStatus{
		Conditions: []corev1.PodCondition{
			{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: long},
			{Type: corev1.PodInitialized, Status: corev1.ConditionFalse, LastTransitionTime: long},
		},
		InitContainerStatuses: []corev1.ContainerStatus{running()},
		ContainerStatuses:     []corev1.ContainerStatus{{Name: "a"}, {Name: "b", Ready: true}},
	}
	setConditions(&st, pod, rec)
	get := func(t corev1.PodConditionType) corev1.PodCondition {
		for _, c := range st.Conditions {
			if c.Type == t {
				return c
			}
		}
		return corev1.PodCondition{}
	}
	if c := get(corev1.PodInitialized); c.Status != corev1.ConditionFalse || !c.LastTransitionTime.Equal(&long) ||
		c.Message != "containers with incomplete status: [setup]" {
		t.Errorf("Initialized %+v", c)
	}
	if c := get(corev1.PodReady); c.Status != corev1.ConditionFalse || c.Reason != "ContainersNotReady" ||
		c.Message != "containers with unready status: [a]" {
		t.Errorf("Ready %+v", c)
	}
	if c := get(corev1.PodReadyToStartContainers); c.Status != corev1.ConditionTrue {
		t.Errorf("PodReadyToStartContainers %+v", c)
	}
	if c := get(corev1.PodScheduled); !c.LastTransitionTime.Equal(&long) {
		t.Errorf("PodScheduled changed: %+v", c)
	}

	rec.initialized = true
	st.ContainerStatuses[0].Ready = true
	setConditions(&st, pod, rec)
	if c := get(corev1.PodInitialized); c.Status != corev1.ConditionTrue || c.LastTransitionTime.Equal(&long) {
		t.Errorf("Initialized after init %+v: want True with a new transition time", c)
	}
	if c := get(corev1.PodReady); c.Status != corev1.ConditionTrue {
		t.Errorf("Ready %+v", c)
	}
}
