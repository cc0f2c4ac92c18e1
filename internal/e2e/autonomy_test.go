package e2e

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// leftoverTimeout bounds the wait for the agent to clear what a pod
// deleted while it was down left behind.
const leftoverTimeout = 90 * time.Second

// autonomyWorkload is a Deployment of the hello server and a busybox pod,
// with a second busybox pod for deleting while the agent is down.
func autonomyWorkload() string {
	return manifests(
		helloDeployment(2),
		busyboxPod("sleeper", "sleep", sleepHour, ""),
		busyboxPod("victim", "sleep", sleepHour, ""))
}

// startSplitTest starts a split node with the test images imported.
func startSplitTest(t *testing.T, opts SplitNodeOptions) (*SplitNode, *nodeTest) {
	t.Helper()
	n := StartSplitNode(t, opts)
	importTestImages(t, n, helloImage, busyboxImage)
	return n, newNodeTest(t, n.Node)
}

// podView is what must not change about a running pod when the agent
// restarts or loses the API server.
type podView struct {
	uid      types.UID
	ip       string
	restarts map[string]int32
	ids      map[string]string // container name -> runtime container id
}

func viewOf(p *corev1.Pod) podView {
	v := podView{uid: p.UID, ip: p.Status.PodIP, restarts: map[string]int32{}, ids: map[string]string{}}
	for _, cs := range p.Status.ContainerStatuses {
		v.restarts[cs.Name] = cs.RestartCount
		v.ids[cs.Name] = strings.TrimPrefix(cs.ContainerID, "containerd://")
	}
	return v
}

func (v podView) String() string {
	return fmt.Sprintf("uid %s ip %s restarts %v containers %v", v.uid, v.ip, v.restarts, v.ids)
}

// runningPods waits until the namespace has exactly want pods, all
// Running and Ready, and returns them by name.
func (nt *nodeTest) runningPods(t *testing.T, ns string, want int) map[string]*corev1.Pod {
	t.Helper()
	deadline := time.Now().Add(podTimeout)
	for {
		list, err := nt.Client.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{})
		var why string
		if err != nil {
			why = err.Error()
		} else {
			out := map[string]*corev1.Pod{}
			for i := range list.Items {
				p := &list.Items[i]
				if p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning && podCondition(p, corev1.PodReady) {
					out[p.Name] = p
				} else {
					why += fmt.Sprintf("\n%s:\n%s", p.Name, podSummary(p))
				}
			}
			if len(out) == want && len(list.Items) == want {
				return out
			}
			why = fmt.Sprintf("%d of %d pods running%s", len(out), len(list.Items), why)
		}
		if time.Now().After(deadline) {
			t.Fatalf("namespace %s: not %d pods Running and Ready within %s: %s", ns, want, podTimeout, why)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// processAlive says whether pid runs (and is not a zombie).
func processAlive(pid uint32) bool {
	return syscall.Kill(int(pid), 0) == nil
}

// TestAgentKill9: an agent killed with SIGKILL and started again adopts the
// running containers without restarting them (same task PIDs, restart
// counts, pod IPs), its pods still serve, a pod force-deleted while it was
// down is cleaned up, and no sandbox is left without a pod.
func TestAgentKill9(t *testing.T) {
	n, nt := startSplitTest(t, SplitNodeOptions{})
	ns := nt.namespace(t, "kill9")
	nt.apply(t, ns, autonomyWorkload())
	before := nt.runningPods(t, ns, 4)
	views := map[string]podView{}
	for name, p := range before {
		views[name] = viewOf(p)
	}
	pids := n.TaskPIDs(t)
	for name, v := range views {
		for c, id := range v.ids {
			if pids[id] == 0 {
				t.Fatalf("pod %s container %s (%s) has no running task; tasks: %v", name, c, id, pids)
			}
		}
	}
	victim := before["victim"]

	n.KillAgent(t)
	// The containers outlive the agent and its containerd: their shims
	// hold them.
	for id, pid := range pids {
		if !processAlive(pid) {
			t.Errorf("container %s (pid %d) died with the agent", id, pid)
		}
	}
	// Gone for good while nobody is there to stop it.
	if r := nt.Kubectl(t, "delete", "pod", "victim", "-n", ns, "--grace-period=0", "--force"); r.ExitCode != 0 {
		t.Fatalf("kubectl delete --force: %s", r)
	}

	n.StartAgent(t)

	after := nt.runningPods(t, ns, 3)
	for name, p := range after {
		if name == "victim" {
			t.Fatalf("victim is back: %s", podSummary(p))
		}
		was, ok := views[name]
		if !ok {
			t.Errorf("pod %s is new after the agent restart: %s", name, podSummary(p))
			continue
		}
		if now := viewOf(p); now.String() != was.String() {
			t.Errorf("pod %s changed across the agent restart:\nbefore %s\nafter  %s", name, was, now)
		}
	}
	pidsAfter := n.TaskPIDs(t)
	for name, v := range views {
		if name == "victim" {
			continue
		}
		for c, id := range v.ids {
			if pidsAfter[id] != pids[id] {
				t.Errorf("pod %s container %s: task pid %d before the restart, %d after", name, c, pids[id], pidsAfter[id])
			}
		}
	}
	for name, p := range after {
		if strings.HasPrefix(name, "hello-") {
			nt.waitHTTP(t, p, 8080, "/", podTimeout, bodyIs("hello from "+name+"\n"))
		}
	}

	// The force-deleted pod: its container stopped, its sandbox and files
	// removed.
	deadline := time.Now().Add(leftoverTimeout)
	for left := n.PodLeftovers(victim.UID); len(left) > 0; left = n.PodLeftovers(victim.UID) {
		if time.Now().After(deadline) {
			t.Fatalf("pod victim, deleted while the agent was down, still holds:\n%s", strings.Join(left, "\n"))
		}
		time.Sleep(500 * time.Millisecond)
	}
	live := map[types.UID]bool{}
	for _, p := range after {
		live[p.UID] = true
	}
	for uid, what := range n.Sandboxes(t) {
		if !live[uid] {
			t.Errorf("sandbox of no pod left on the node: %s %v", uid, what)
		}
	}
	if got := slices.Sorted(maps.Keys(n.Sandboxes(t))); len(got) != len(live) {
		t.Errorf("sandboxes %v, want one per running pod (%d)", got, len(live))
	}
}

// offlineWorkload is the hello Deployment, a busybox pod, and a pod that
// crashes 5 s after each start (restartPolicy is Always by default).
func offlineWorkload() string {
	return manifests(
		helloDeployment(1),
		busyboxPod("sleeper", "sleep", sleepHour, ""),
		busyboxPod("crasher", "crash", `["sh", "-c", "sleep 5; exit 1"]`, ""))
}

// serverDown is how long the API server stays away in TestAgentOffline.
const serverDown = 60 * time.Second

// latestAttempt is the highest attempt number among the runtime
// containers of container name of pod uid, and that container's id.
func latestAttempt(t *testing.T, n *SplitNode, uid types.UID, name string) (int, string) {
	t.Helper()
	best, bestID := -1, ""
	for _, id := range n.ContainerIDs(t) {
		rest, ok := strings.CutPrefix(id, string(uid)+"-")
		if !ok {
			continue
		}
		num, cname, ok := strings.Cut(rest, "-")
		if !ok || cname != name {
			continue
		}
		var a int
		if _, err := fmt.Sscan(num, &a); err == nil && a > best {
			best, bestID = a, id
		}
	}
	return best, bestID
}

// steadyPIDs checks that every container of want still runs as the same
// task.
func steadyPIDs(t *testing.T, n *SplitNode, want map[string]uint32, when string) {
	t.Helper()
	now := n.TaskPIDs(t)
	for id, pid := range want {
		if now[id] != pid {
			t.Errorf("%s: container %s ran as pid %d, now %d", when, id, pid, now[id])
		}
	}
}

// TestAgentOffline: with the API server stopped for a minute, the node
// keeps its pods running and restarts a crashing container locally; once
// the server is back the pod's status in the API shows those restarts. An
// agent killed and started again while the server is down keeps the pods
// and restarts crashed containers from the pods it cached on disk.
func TestAgentOffline(t *testing.T) {
	n, nt := startSplitTest(t, SplitNodeOptions{})
	ns := nt.namespace(t, "offline")
	nt.apply(t, ns, offlineWorkload())
	crasher := nt.waitContainerRunning(t, ns, "crasher", "crash")
	stable := map[string]uint32{}
	all := n.TaskPIDs(t)
	deadline := time.Now().Add(podTimeout)
	for {
		list, err := nt.Client.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		clear(stable)
		for _, p := range list.Items {
			if p.Name == "crasher" {
				continue
			}
			for _, cs := range p.Status.ContainerStatuses {
				if cs.State.Running != nil {
					id := strings.TrimPrefix(cs.ContainerID, "containerd://")
					stable[id] = all[id]
				}
			}
		}
		if len(stable) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("hello and sleeper not running within %s", podTimeout)
		}
		time.Sleep(250 * time.Millisecond)
		all = n.TaskPIDs(t)
	}
	for id, pid := range stable {
		if pid == 0 {
			t.Fatalf("container %s has no task", id)
		}
	}
	before, _ := latestAttempt(t, n, crasher.UID, "crash")

	t.Run("ServerDown", func(t *testing.T) {
		n.StopServer(t)
		time.Sleep(serverDown / 2)
		steadyPIDs(t, n, stable, "halfway through the outage")
		time.Sleep(serverDown / 2)
		steadyPIDs(t, n, stable, "at the end of the outage")
		local, _ := latestAttempt(t, n, crasher.UID, "crash")
		if local <= before {
			t.Fatalf("crasher not restarted while the server was down: attempt %d before, %d after", before, local)
		}
		n.RestartServer(t)
		nt.waitPod(t, ns, "crasher", podTimeout, "reporting the restarts made offline", func(p *corev1.Pod) error {
			cs := containerStatus(p, "crash")
			if cs == nil || int(cs.RestartCount) < local {
				return fmt.Errorf("restartCount below the %d local restarts", local)
			}
			if cs.LastTerminationState.Terminated == nil {
				return fmt.Errorf("no last termination")
			}
			if now, nowID := latestAttempt(t, n, crasher.UID, "crash"); int(cs.RestartCount) != now || cs.ContainerID != "containerd://"+nowID {
				return fmt.Errorf("status shows attempt %d (%s), the node runs %d (%s)", cs.RestartCount, cs.ContainerID, now, nowID)
			}
			return nil
		})
		steadyPIDs(t, n, stable, "after the server came back")
	})
	if t.Failed() {
		return
	}

	t.Run("AgentRestartWhileServerDown", func(t *testing.T) {
		n.StopServer(t)
		was, _ := latestAttempt(t, n, crasher.UID, "crash")
		n.KillAgent(t)
		n.StartAgentOffline(t)
		steadyPIDs(t, n, stable, "after the agent started offline")
		// The crasher's next run comes from the pod cached on disk.
		deadline := time.Now().Add(podTimeout)
		for {
			if now, _ := latestAttempt(t, n, crasher.UID, "crash"); now > was {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("crasher not restarted by the agent started offline within %s\nagent log:\n%s", podTimeout, tail(n.Agent.LogPath, 8<<10))
			}
			time.Sleep(500 * time.Millisecond)
		}
		steadyPIDs(t, n, stable, "after an offline restart of the crasher")
		n.RestartServer(t)
		nt.waitPod(t, ns, "crasher", podTimeout, "reporting the restarts made offline", func(p *corev1.Pod) error {
			cs := containerStatus(p, "crash")
			now, nowID := latestAttempt(t, n, crasher.UID, "crash")
			if cs == nil || int(cs.RestartCount) != now || cs.ContainerID != "containerd://"+nowID {
				return fmt.Errorf("status shows %v, the node runs attempt %d (%s)", cs, now, nowID)
			}
			return nil
		})
		steadyPIDs(t, n, stable, "after the server came back")
	})
}
