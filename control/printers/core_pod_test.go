package printers

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func running() corev1.ContainerState {
	return corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: ago(time.Hour)}}
}

func waiting(reason string) corev1.ContainerState {
	return corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason}}
}

func terminated(reason string, code, signal int32) corev1.ContainerState {
	return corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: reason, ExitCode: code, Signal: signal}}
}

func lastTerminated(d time.Duration) corev1.ContainerState {
	return corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "Error", ExitCode: 1, FinishedAt: ago(d)}}
}

func containers(names ...string) []corev1.Container {
	out := make([]corev1.Container, len(names))
	for i, n := range names {
		out[i] = corev1.Container{Name: n, Image: n + ":1"}
	}
	return out
}

func sidecar(name string) corev1.Container {
	return corev1.Container{Name: name, Image: name + ":1", RestartPolicy: ptr(corev1.ContainerRestartPolicyAlways)}
}

func basePod(name string) corev1.Pod {
	return corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", CreationTimestamp: ago(10 * time.Minute)},
		Spec:       corev1.PodSpec{Containers: containers("app")},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning},
	}
}

func TestPodColumns(t *testing.T) {
	pod := basePod("web")
	tbl := mustTable(t, &pod)
	assertColumns(t, tbl,
		[]string{"Name", "Ready", "Status", "Restarts", "Age"},
		[]string{"IP", "Node", "Nominated Node", "Readiness Gates"})
	if c := tbl.ColumnDefinitions[0]; c.Format != "name" || c.Description != (metav1.ObjectMeta{}).SwaggerDoc()["name"] {
		t.Errorf("name column = %+v", c)
	}
	if d := tbl.ColumnDefinitions[5].Description; d != (corev1.PodStatus{}).SwaggerDoc()["podIP"] || d == "" {
		t.Errorf("IP description = %q", d)
	}
	if got := tbl.ColumnDefinitions[3].Type; got != "string" {
		t.Errorf("Restarts type = %q, want string", got)
	}
}

func TestPodStatusReadyRestarts(t *testing.T) {
	tests := []struct {
		name                    string
		mutate                  func(p *corev1.Pod)
		ready, status, restarts string
	}{
		{
			name: "running and ready",
			mutate: func(p *corev1.Pod) {
				p.Spec.Containers = containers("app", "proxy")
				p.Status.ContainerStatuses = []corev1.ContainerStatus{
					{Name: "app", Ready: true, State: running()},
					{Name: "proxy", Ready: true, State: running()},
				}
			},
			ready: "2/2", status: "Running", restarts: "0",
		},
		{
			name:   "pending without statuses",
			mutate: func(p *corev1.Pod) { p.Status.Phase = corev1.PodPending },
			ready:  "0/1", status: "Pending", restarts: "0",
		},
		{
			name:   "unset phase reads as pending",
			mutate: func(p *corev1.Pod) { p.Status = corev1.PodStatus{} },
			ready:  "0/1", status: "Pending", restarts: "0",
		},
		{
			name: "container creating",
			mutate: func(p *corev1.Pod) {
				p.Status.Phase = corev1.PodPending
				p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "app", State: waiting("ContainerCreating")}}
			},
			ready: "0/1", status: "ContainerCreating", restarts: "0",
		},
		{
			name: "crash loop with last restart time",
			mutate: func(p *corev1.Pod) {
				p.Status.ContainerStatuses = []corev1.ContainerStatus{{
					Name: "app", RestartCount: 3, State: waiting("CrashLoopBackOff"), LastTerminationState: lastTerminated(5 * time.Minute),
				}}
			},
			ready: "0/1", status: "CrashLoopBackOff", restarts: "3 (5m ago)",
		},
		{
			name: "restarts without termination time",
			mutate: func(p *corev1.Pod) {
				p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "app", Ready: true, RestartCount: 4, State: running()}}
			},
			ready: "1/1", status: "Running", restarts: "4",
		},
		{
			name: "latest restart across containers",
			mutate: func(p *corev1.Pod) {
				p.Spec.Containers = containers("a", "b")
				p.Status.ContainerStatuses = []corev1.ContainerStatus{
					{Name: "a", Ready: true, RestartCount: 1, State: running(), LastTerminationState: lastTerminated(2 * time.Hour)},
					{Name: "b", Ready: true, RestartCount: 2, State: running(), LastTerminationState: lastTerminated(90 * time.Second)},
				}
			},
			ready: "2/2", status: "Running", restarts: "3 (90s ago)",
		},
		{
			name: "init container running",
			mutate: func(p *corev1.Pod) {
				p.Status.Phase = corev1.PodPending
				p.Spec.InitContainers = containers("migrate", "seed")
				p.Status.InitContainerStatuses = []corev1.ContainerStatus{
					{Name: "migrate", State: running()},
					{Name: "seed", State: waiting("PodInitializing")},
				}
				p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "app", State: waiting("PodInitializing")}}
			},
			ready: "0/1", status: "Init:0/2", restarts: "0",
		},
		{
			name: "second init container running",
			mutate: func(p *corev1.Pod) {
				p.Status.Phase = corev1.PodPending
				p.Spec.InitContainers = containers("migrate", "seed")
				p.Status.InitContainerStatuses = []corev1.ContainerStatus{
					{Name: "migrate", State: terminated("Completed", 0, 0)},
					{Name: "seed", State: running()},
				}
			},
			ready: "0/1", status: "Init:1/2", restarts: "0",
		},
		{
			name: "init container failed",
			mutate: func(p *corev1.Pod) {
				p.Status.Phase = corev1.PodPending
				p.Spec.InitContainers = containers("migrate")
				p.Status.InitContainerStatuses = []corev1.ContainerStatus{{Name: "migrate", State: terminated("Error", 1, 0)}}
			},
			ready: "0/1", status: "Init:Error", restarts: "0",
		},
		{
			name: "init container crash looping",
			mutate: func(p *corev1.Pod) {
				p.Status.Phase = corev1.PodPending
				p.Spec.InitContainers = containers("migrate")
				p.Status.InitContainerStatuses = []corev1.ContainerStatus{{
					Name: "migrate", RestartCount: 2, State: waiting("CrashLoopBackOff"), LastTerminationState: lastTerminated(30 * time.Second),
				}}
			},
			ready: "0/1", status: "Init:CrashLoopBackOff", restarts: "2 (30s ago)",
		},
		{
			name: "init container exit code without reason",
			mutate: func(p *corev1.Pod) {
				p.Spec.InitContainers = containers("migrate")
				p.Status.InitContainerStatuses = []corev1.ContainerStatus{{Name: "migrate", State: terminated("", 2, 0)}}
			},
			ready: "0/1", status: "Init:ExitCode:2", restarts: "0",
		},
		{
			name: "init container killed by signal",
			mutate: func(p *corev1.Pod) {
				p.Spec.InitContainers = containers("migrate")
				p.Status.InitContainerStatuses = []corev1.ContainerStatus{{Name: "migrate", State: terminated("", 137, 9)}}
			},
			ready: "0/1", status: "Init:Signal:9", restarts: "0",
		},
		{
			name: "finished init restarts are not counted",
			mutate: func(p *corev1.Pod) {
				p.Spec.InitContainers = containers("migrate")
				p.Status.InitContainerStatuses = []corev1.ContainerStatus{{
					Name: "migrate", RestartCount: 2, State: terminated("Completed", 0, 0), LastTerminationState: lastTerminated(time.Minute),
				}}
				p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "app", Ready: true, State: running()}}
			},
			ready: "1/1", status: "Running", restarts: "0",
		},
		{
			name: "completed",
			mutate: func(p *corev1.Pod) {
				p.Status.Phase = corev1.PodSucceeded
				p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "app", State: terminated("Completed", 0, 0)}}
			},
			ready: "0/1", status: "Completed", restarts: "0",
		},
		{
			name: "one container completed, other running, pod ready",
			mutate: func(p *corev1.Pod) {
				p.Spec.Containers = containers("app", "job")
				p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
				p.Status.ContainerStatuses = []corev1.ContainerStatus{
					{Name: "app", Ready: true, State: running()},
					{Name: "job", State: terminated("Completed", 0, 0)},
				}
			},
			ready: "1/2", status: "Running", restarts: "0",
		},
		{
			name: "one container completed, other running, pod not ready",
			mutate: func(p *corev1.Pod) {
				p.Spec.Containers = containers("app", "job")
				p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionFalse}}
				p.Status.ContainerStatuses = []corev1.ContainerStatus{
					{Name: "app", Ready: true, State: running()},
					{Name: "job", State: terminated("Completed", 0, 0)},
				}
			},
			ready: "1/2", status: "NotReady", restarts: "0",
		},
		{
			name: "container exit code without reason",
			mutate: func(p *corev1.Pod) {
				p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "app", State: terminated("", 3, 0)}}
			},
			ready: "0/1", status: "ExitCode:3", restarts: "0",
		},
		{
			name: "container killed by signal",
			mutate: func(p *corev1.Pod) {
				p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "app", State: terminated("", 0, 15)}}
			},
			ready: "0/1", status: "Signal:15", restarts: "0",
		},
		{
			name: "terminating",
			mutate: func(p *corev1.Pod) {
				p.DeletionTimestamp = agoPtr(time.Second)
				p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "app", Ready: true, State: running()}}
			},
			ready: "1/1", status: "Terminating", restarts: "0",
		},
		{
			name: "deleted after completion keeps terminal status",
			mutate: func(p *corev1.Pod) {
				p.DeletionTimestamp = agoPtr(time.Second)
				p.Status.Phase = corev1.PodSucceeded
				p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "app", State: terminated("Completed", 0, 0)}}
			},
			ready: "0/1", status: "Completed", restarts: "0",
		},
		{
			name: "node lost",
			mutate: func(p *corev1.Pod) {
				p.Status.Reason = "NodeLost"
			},
			ready: "0/1", status: "NodeLost", restarts: "0",
		},
		{
			name: "node lost and being deleted",
			mutate: func(p *corev1.Pod) {
				p.Status.Reason = "NodeLost"
				p.DeletionTimestamp = agoPtr(time.Minute)
			},
			ready: "0/1", status: "Unknown", restarts: "0",
		},
		{
			name: "evicted",
			mutate: func(p *corev1.Pod) {
				p.Status.Phase = corev1.PodFailed
				p.Status.Reason = "Evicted"
			},
			ready: "0/1", status: "Evicted", restarts: "0",
		},
		{
			name: "scheduling gated",
			mutate: func(p *corev1.Pod) {
				p.Status.Phase = corev1.PodPending
				p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonSchedulingGated}}
			},
			ready: "0/1", status: "SchedulingGated", restarts: "0",
		},
		{
			name: "started sidecar counts towards ready and restarts",
			mutate: func(p *corev1.Pod) {
				p.Spec.InitContainers = []corev1.Container{sidecar("mesh")}
				p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodInitialized, Status: corev1.ConditionTrue}}
				p.Status.InitContainerStatuses = []corev1.ContainerStatus{{
					Name: "mesh", Ready: true, Started: ptr(true), RestartCount: 2, State: running(), LastTerminationState: lastTerminated(4 * time.Minute),
				}}
				p.Status.ContainerStatuses = []corev1.ContainerStatus{{
					Name: "app", Ready: true, RestartCount: 1, State: running(), LastTerminationState: lastTerminated(20 * time.Minute),
				}}
			},
			ready: "2/2", status: "Running", restarts: "3 (4m ago)",
		},
		{
			name: "sidecar not yet started blocks initialization",
			mutate: func(p *corev1.Pod) {
				p.Status.Phase = corev1.PodPending
				p.Spec.InitContainers = []corev1.Container{sidecar("mesh"), containers("migrate")[0]}
				p.Status.InitContainerStatuses = []corev1.ContainerStatus{
					{Name: "mesh", Started: ptr(false), State: waiting("PodInitializing")},
					{Name: "migrate", State: waiting("PodInitializing")},
				}
			},
			ready: "0/2", status: "Init:0/2", restarts: "0",
		},
		{
			name: "started sidecar then regular init container running",
			mutate: func(p *corev1.Pod) {
				p.Status.Phase = corev1.PodPending
				p.Spec.InitContainers = []corev1.Container{sidecar("mesh"), containers("migrate")[0]}
				p.Status.InitContainerStatuses = []corev1.ContainerStatus{
					{Name: "mesh", Ready: true, Started: ptr(true), State: running()},
					{Name: "migrate", State: running()},
				}
			},
			ready: "1/2", status: "Init:1/2", restarts: "0",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pod := basePod("web")
			tc.mutate(&pod)
			tbl := mustTable(t, &pod)
			assertCells(t, tbl, 0, map[string]interface{}{
				"Name":     "web",
				"Ready":    tc.ready,
				"Status":   tc.status,
				"Restarts": tc.restarts,
				"Age":      "10m",
			})
		})
	}
}

func TestPodRowConditions(t *testing.T) {
	for phase, want := range map[corev1.PodPhase]string{corev1.PodSucceeded: "Succeeded", corev1.PodFailed: "Failed", corev1.PodRunning: ""} {
		pod := basePod("p")
		pod.Status.Phase = phase
		tbl := mustTable(t, &pod)
		conds := tbl.Rows[0].Conditions
		if want == "" {
			if len(conds) != 0 {
				t.Errorf("%s: unexpected row conditions %v", phase, conds)
			}
			continue
		}
		if len(conds) != 1 || conds[0].Type != metav1.RowCompleted || conds[0].Reason != want || conds[0].Status != metav1.ConditionTrue {
			t.Errorf("%s: row conditions = %v", phase, conds)
		}
	}
}

func TestPodWideColumns(t *testing.T) {
	scheduled := basePod("scheduled")
	scheduled.Spec.NodeName = "node-1"
	scheduled.Status.PodIPs = []corev1.PodIP{{IP: "10.244.0.5"}, {IP: "fd00::5"}}
	scheduled.Status.PodIP = "10.244.0.5"
	scheduled.Spec.ReadinessGates = []corev1.PodReadinessGate{{ConditionType: "example.com/lb"}, {ConditionType: "example.com/dns"}}
	scheduled.Status.Conditions = []corev1.PodCondition{
		{Type: "example.com/lb", Status: corev1.ConditionTrue},
		{Type: "example.com/dns", Status: corev1.ConditionFalse},
	}

	unscheduled := basePod("unscheduled")
	unscheduled.Status.Phase = corev1.PodPending
	unscheduled.Status.NominatedNodeName = "node-2"

	legacyIP := basePod("legacy")
	legacyIP.Status.PodIP = "10.244.1.9"

	list := &corev1.PodList{Items: []corev1.Pod{scheduled, unscheduled, legacyIP}}
	tbl := mustTable(t, list)
	if len(tbl.Rows) != 3 {
		t.Fatalf("rows = %d, want 3", len(tbl.Rows))
	}
	assertCells(t, tbl, 0, map[string]interface{}{"Name": "scheduled", "IP": "10.244.0.5", "Node": "node-1", "Nominated Node": "<none>", "Readiness Gates": "1/2"})
	assertCells(t, tbl, 1, map[string]interface{}{"Name": "unscheduled", "IP": "<none>", "Node": "<none>", "Nominated Node": "node-2", "Readiness Gates": "<none>"})
	assertCells(t, tbl, 2, map[string]interface{}{"IP": "10.244.1.9"})
}

func TestEmptyPodList(t *testing.T) {
	tbl := mustTable(t, &corev1.PodList{})
	if tbl.Rows == nil || len(tbl.Rows) != 0 {
		t.Fatalf("rows = %#v, want empty non-nil slice", tbl.Rows)
	}
	if len(tbl.ColumnDefinitions) != 9 {
		t.Fatalf("columns = %d, want 9", len(tbl.ColumnDefinitions))
	}
}
