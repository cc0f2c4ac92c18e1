package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/wasmkube/wasmkube/internal/testimages"
)

// grpcHealthImage is the gRPC health server of the probe tests.
const grpcHealthImage = "wasmkube.test/e2e/grpchealth:v1"

// TestNodeProbes runs the probe and lifecycle hook tests against a
// `wasmkube up` of their own: readiness following its probe into the
// Service's EndpointSlice, liveness and startup probes restarting (or not)
// containers, exec, httpGet, tcpSocket and grpc checks, and postStart and
// preStop hooks.
func TestNodeProbes(t *testing.T) {
	nt := startNodeTest(t, NodeOptions{}, helloImage, busyboxImage, grpcHealthImage)
	t.Run("probes", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			run  func(*testing.T, *nodeTest)
		}{
			{"ReadinessFollowsProbes", testReadinessFollowsProbes},
			{"LivenessRestarts", testLivenessRestarts},
			{"StartupHoldsLiveness", testStartupHoldsLiveness},
			{"TCPAndGRPC", testTCPAndGRPC},
			{"LifecycleHooksOrder", testLifecycleHooksOrder},
			{"PostStartFails", testPostStartFails},
			{"EventsAsUpstream", testEventsAsUpstream},
			{"DeleteDuringPostStart", testDeleteDuringPostStart},
		} {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				tc.run(t, nt)
			})
		}
	})
}

// flagDir is a host directory a pod mounts by hostPath, where the test
// creates and removes the files the pod's probes look at.
func flagDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	return dir
}

func setFlag(t *testing.T, dir, name string, on bool) {
	t.Helper()
	path := filepath.Join(dir, name)
	var err error
	if on {
		err = os.WriteFile(path, []byte("on\n"), 0o644)
	} else {
		err = os.Remove(path)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// waitDescribe reruns `kubectl describe pod` until its output holds every
// one of want (events reach the API server asynchronously).
func (nt *nodeTest) waitDescribe(t *testing.T, ns, name string, want ...string) string {
	t.Helper()
	deadline := time.Now().Add(podTimeout)
	for {
		out := nt.MustKubectl(t, "describe", "pod", name, "-n", ns)
		var missing []string
		for _, w := range want {
			if !strings.Contains(out, w) {
				missing = append(missing, w)
			}
		}
		if len(missing) == 0 {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("kubectl describe pod %s/%s lacks %q within %s:\n%s", ns, name, missing, podTimeout, out)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// endpointReady is the ready condition of the pod's endpoint in the
// Service's EndpointSlices, and whether there is one.
func (nt *nodeTest) endpointReady(t *testing.T, ns, svc string, pod *corev1.Pod) (ready, found bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	slices, err := nt.Client.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{
		LabelSelector: discoveryv1.LabelServiceName + "=" + svc,
	})
	if err != nil {
		return false, false
	}
	for _, s := range slices.Items {
		for _, ep := range s.Endpoints {
			if ep.TargetRef != nil && ep.TargetRef.UID == pod.UID {
				return ep.Conditions.Ready != nil && *ep.Conditions.Ready, true
			}
		}
	}
	return false, false
}

// waitReadiness waits until the pod's Ready condition, each named
// container's ready field and the pod's endpoint in svc all say want.
func (nt *nodeTest) waitReadiness(t *testing.T, ns, name, svc string, want bool, containers map[string]bool) {
	t.Helper()
	what := fmt.Sprintf("Ready=%v with containers %v and endpoint ready=%v", want, containers, want)
	nt.waitPod(t, ns, name, podTimeout, what, func(p *corev1.Pod) error {
		if p.Status.Phase != corev1.PodRunning {
			return fmt.Errorf("phase %s", p.Status.Phase)
		}
		if got := podCondition(p, corev1.PodReady); got != want {
			return fmt.Errorf("Ready condition %v", got)
		}
		if got := podCondition(p, corev1.ContainersReady); got != want {
			return fmt.Errorf("ContainersReady condition %v", got)
		}
		for c, ready := range containers {
			cs := containerStatus(p, c)
			if cs == nil || cs.State.Running == nil || cs.Ready != ready {
				return fmt.Errorf("container %s: want running and ready=%v", c, ready)
			}
		}
		if svc == "" {
			return nil
		}
		ready, found := nt.endpointReady(t, ns, svc, p)
		if !found || ready != want {
			return fmt.Errorf("endpoint in the EndpointSlices of %s: found %v, ready %v", svc, found, ready)
		}
		return nil
	})
}

// testReadinessFollowsProbes: an httpGet readiness probe (the hello server's
// /healthz, flipped by a file) and an exec one (test -f) decide the
// containers' ready fields, the pod's Ready and ContainersReady conditions
// and its endpoint's ready condition, both ways, more than once.
func testReadinessFollowsProbes(t *testing.T, nt *nodeTest) {
	ns := nt.namespace(t, "readiness")
	flags := flagDir(t)
	nt.apply(t, ns, `apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector:
    app: web
  ports:
  - port: 80
    targetPort: http
---
apiVersion: v1
kind: Pod
metadata:
  name: web
  labels:
    app: web
spec:
  terminationGracePeriodSeconds: 1
  volumes:
  - name: flags
    hostPath:
      path: `+flags+`
      type: Directory
  containers:
  - name: web
    image: `+helloImage+`
    env:
    - name: HELLO_HEALTH_FILE
      value: /flags/web
    ports:
    - name: http
      containerPort: 8080
    volumeMounts:
    - name: flags
      mountPath: /flags
    readinessProbe:
      httpGet:
        path: /healthz
        port: http
      periodSeconds: 1
      failureThreshold: 1
  - name: check
    image: `+busyboxImage+`
    command: ["sleep", "3600"]
    volumeMounts:
    - name: flags
      mountPath: /flags
    readinessProbe:
      exec:
        command: ["test", "-f", "/flags/check"]
      periodSeconds: 1
      failureThreshold: 1
`)
	// Fails: neither file exists.
	nt.waitReadiness(t, ns, "web", "web", false, map[string]bool{"web": false, "check": false})
	nt.waitDescribe(t, ns, "web", "Unhealthy", "Readiness probe failed: HTTP probe failed with statuscode: 503")
	// Recovers.
	setFlag(t, flags, "web", true)
	setFlag(t, flags, "check", true)
	nt.waitReadiness(t, ns, "web", "web", true, map[string]bool{"web": true, "check": true})
	// Fails again through the httpGet probe.
	setFlag(t, flags, "web", false)
	nt.waitReadiness(t, ns, "web", "web", false, map[string]bool{"web": false, "check": true})
	// Recovers, then fails through the exec probe.
	setFlag(t, flags, "web", true)
	nt.waitReadiness(t, ns, "web", "web", true, map[string]bool{"web": true, "check": true})
	setFlag(t, flags, "check", false)
	nt.waitReadiness(t, ns, "web", "web", false, map[string]bool{"web": true, "check": false})
	setFlag(t, flags, "check", true)
	nt.waitReadiness(t, ns, "web", "web", true, map[string]bool{"web": true, "check": true})

	p := nt.waitPod(t, ns, "web", podTimeout, "unrestarted", func(*corev1.Pod) error { return nil })
	for _, cs := range p.Status.ContainerStatuses {
		if cs.RestartCount != 0 {
			t.Errorf("container %s restarted %d times: readiness must not restart", cs.Name, cs.RestartCount)
		}
	}
}

// testLivenessRestarts: a failing exec liveness probe gets the container
// killed and restarted, with upstream's Unhealthy and Killing events.
func testLivenessRestarts(t *testing.T, nt *nodeTest) {
	ns := nt.namespace(t, "liveness")
	nt.apply(t, ns, busyboxPod("dying", "app", sleepHour, `    livenessProbe:
      exec:
        command: ["sh", "-c", "echo no pulse; exit 1"]
      periodSeconds: 1
      failureThreshold: 2
`))
	p := nt.waitPod(t, ns, "dying", 2*podTimeout, "restarted twice", func(p *corev1.Pod) error {
		cs := containerStatus(p, "app")
		if cs == nil || cs.RestartCount < 2 {
			return fmt.Errorf("restarts so far: %+v", cs)
		}
		return nil
	})
	cs := mustContainer(t, p, "app")
	if last := cs.LastTerminationState.Terminated; last == nil || last.ExitCode == 0 {
		t.Errorf("last state %+v: want the killed container's non-zero exit", cs.LastTerminationState)
	}
	nt.waitDescribe(t, ns, "dying", "Unhealthy", "spec.containers{app}: Liveness probe failed: no pulse",
		"Killing", "spec.containers{app}: Container app failed liveness probe, will be restarted",
		"BackOff", "Back-off restarting failed container app in pod dying_liveness(")
}

// testStartupHoldsLiveness: a startup probe that succeeds only after a
// while keeps a liveness probe (which would fail meanwhile) from running;
// started flips to true and the container is never restarted.
func testStartupHoldsLiveness(t *testing.T, nt *nodeTest) {
	ns := nt.namespace(t, "startup")
	nt.apply(t, ns, busyboxPod("slow", "app", `["sh", "-c", "sleep 8; touch /tmp/started; exec sleep 3600"]`, `    startupProbe:
      exec:
        command: ["test", "-f", "/tmp/started"]
      periodSeconds: 1
      failureThreshold: 60
    livenessProbe:
      exec:
        command: ["test", "-f", "/tmp/started"]
      periodSeconds: 1
      failureThreshold: 1
`))
	nt.waitPod(t, ns, "slow", podTimeout, "running, not started yet", func(p *corev1.Pod) error {
		cs := containerStatus(p, "app")
		if cs == nil || cs.State.Running == nil || cs.Started == nil || *cs.Started || cs.Ready {
			return fmt.Errorf("want running, started=false, ready=false: %+v", cs)
		}
		return nil
	})
	p := nt.waitPod(t, ns, "slow", podTimeout, "started and ready", func(p *corev1.Pod) error {
		cs := containerStatus(p, "app")
		if cs == nil || cs.State.Running == nil || cs.Started == nil || !*cs.Started || !cs.Ready {
			return fmt.Errorf("want running, started and ready: %+v", cs)
		}
		return nil
	})
	if cs := mustContainer(t, p, "app"); cs.RestartCount != 0 {
		t.Errorf("restarted %d times while the startup probe held liveness back", cs.RestartCount)
	}
	out := nt.MustKubectl(t, "describe", "pod", "slow", "-n", ns)
	if strings.Contains(out, "Liveness probe failed") || strings.Contains(out, "Killing") {
		t.Errorf("liveness ran before the startup probe succeeded:\n%s", out)
	}
}

// testTCPAndGRPC: tcpSocket and grpc probes that pass keep a pod ready and
// unrestarted; a tcpSocket liveness probe on a closed port restarts its
// container, and a grpc readiness probe of an unknown service keeps its
// container unready, with upstream's messages.
func testTCPAndGRPC(t *testing.T, nt *nodeTest) {
	ns := nt.namespace(t, "tcpgrpc")
	pod := func(name, livePort, service string) string {
		return `apiVersion: v1
kind: Pod
metadata:
  name: ` + name + `
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: web
    image: ` + helloImage + `
    ports:
    - name: http
      containerPort: 8080
    readinessProbe:
      tcpSocket:
        port: http
      periodSeconds: 1
    livenessProbe:
      tcpSocket:
        port: ` + livePort + `
      periodSeconds: 1
      failureThreshold: 2
  - name: grpc
    image: ` + grpcHealthImage + `
    env:
    - name: GRPC_SERVICES
      value: hello
    readinessProbe:
      grpc:
        port: ` + strconv.Itoa(testimages.GRPCHealthPort) + `
        service: ` + service + `
      periodSeconds: 1
    livenessProbe:
      grpc:
        port: ` + strconv.Itoa(testimages.GRPCHealthPort) + `
      periodSeconds: 1
      failureThreshold: 2
`
	}
	nt.apply(t, ns, pod("healthy", "8080", "hello"))
	nt.apply(t, ns, pod("unhealthy", "8081", "nobody"))

	nt.waitReadiness(t, ns, "healthy", "", true, map[string]bool{"web": true, "grpc": true})
	p := nt.waitPod(t, ns, "unhealthy", 2*podTimeout, "web restarted, grpc unready", func(p *corev1.Pod) error {
		web, grpc := containerStatus(p, "web"), containerStatus(p, "grpc")
		if web == nil || web.RestartCount < 1 {
			return fmt.Errorf("web not restarted yet: %+v", web)
		}
		if grpc == nil || grpc.State.Running == nil || grpc.Ready || grpc.RestartCount != 0 {
			return fmt.Errorf("want grpc running, unready and never restarted: %+v", grpc)
		}
		return nil
	})
	if podCondition(p, corev1.PodReady) {
		t.Errorf("pod with an unready container is Ready:\n%s", podSummary(p))
	}
	nt.waitDescribe(t, ns, "unhealthy",
		"Liveness probe failed: dial tcp "+p.Status.PodIP+":8081: connect: connection refused",
		"Container web failed liveness probe, will be restarted",
		"Readiness probe failed: error: health rpc probe failed: rpc error: code = NotFound")
	healthy := nt.waitPod(t, ns, "healthy", podTimeout, "still ready", func(p *corev1.Pod) error {
		if !podCondition(p, corev1.PodReady) {
			return fmt.Errorf("not Ready")
		}
		return nil
	})
	for _, cs := range healthy.Status.ContainerStatuses {
		if cs.RestartCount != 0 {
			t.Errorf("healthy container %s restarted %d times", cs.Name, cs.RestartCount)
		}
	}
}

// testLifecycleHooksOrder: the container is reported running only once its
// postStart hook returned, and on deletion the preStop hook runs to its end
// before SIGTERM reaches the process, all within the grace period. The
// hooks and the SIGTERM trap append to one file the test reads.
func testLifecycleHooksOrder(t *testing.T, nt *nodeTest) {
	ns := nt.namespace(t, "hooks")
	dir := flagDir(t)
	nt.apply(t, ns, `apiVersion: v1
kind: Pod
metadata:
  name: hooked
spec:
  terminationGracePeriodSeconds: 15
  volumes:
  - name: log
    hostPath:
      path: `+dir+`
      type: Directory
  containers:
  - name: app
    image: `+busyboxImage+`
    command:
    - sh
    - -c
    - |
      trap 'echo term $(date +%s) >> /log/events; exit 0' TERM
      echo start $(date +%s) >> /log/events
      while true; do sleep 1; done
    volumeMounts:
    - name: log
      mountPath: /log
    lifecycle:
      postStart:
        exec:
          command: ["sh", "-c", "sleep 2; echo poststart $(date +%s) >> /log/events"]
      preStop:
        exec:
          command: ["sh", "-c", "echo prestop $(date +%s) >> /log/events; sleep 3; echo prestop-done $(date +%s) >> /log/events"]
`)
	nt.waitContainerRunning(t, ns, "hooked", "app")
	events := readEvents(t, dir)
	if !hasEvent(events, "poststart") {
		t.Fatalf("reported running before its postStart hook returned: events %v", events)
	}

	deleted := time.Now().Unix()
	nt.MustKubectl(t, "delete", "pod", "hooked", "-n", ns, "--wait=false")
	nt.waitGone(t, ns, "hooked")
	events = readEvents(t, dir)
	var order []string
	for _, e := range events {
		order = append(order, e.what)
	}
	if got := strings.Join(order, " "); got != "start poststart prestop prestop-done term" {
		t.Fatalf("events in order %q, want start poststart prestop prestop-done term (%v)", got, events)
	}
	// Seconds as date prints them: the bound allows for the rounding.
	if term := events[len(events)-1].at; term > deleted+15+1 {
		t.Errorf("SIGTERM at %d, more than the 15 s grace period after the delete at %d", term, deleted)
	}
}

type hookEvent struct {
	what string
	at   int64
}

func readEvents(t *testing.T, dir string) []hookEvent {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "events"))
	if err != nil {
		t.Fatalf("events file: %v", err)
	}
	var out []hookEvent
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 {
			t.Fatalf("events line %q", line)
		}
		at, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			t.Fatalf("events line %q: %v", line, err)
		}
		out = append(out, hookEvent{what: f[0], at: at})
	}
	return out
}

func hasEvent(events []hookEvent, what string) bool {
	for _, e := range events {
		if e.what == what {
			return true
		}
	}
	return false
}

// waitGone waits until the pod object is deleted.
func (nt *nodeTest) waitGone(t *testing.T, ns, name string) {
	t.Helper()
	r := nt.Kubectl(t, "wait", "--for=delete", "pod/"+name, "-n", ns, "--timeout=25s")
	if r.ExitCode != 0 && !strings.Contains(r.Stderr, "not found") {
		t.Fatalf("pod %s/%s not gone: %s", ns, name, r)
	}
}

// testPostStartFails: a failing postStart hook kills the container, which
// restarts per restartPolicy, with upstream's FailedPostStartHook event.
func testPostStartFails(t *testing.T, nt *nodeTest) {
	ns := nt.namespace(t, "poststart")
	nt.apply(t, ns, busyboxPod("broken-hook", "app", sleepHour, `    lifecycle:
      postStart:
        exec:
          command: ["sh", "-c", "echo hook says no; exit 3"]
`))
	nt.waitPod(t, ns, "broken-hook", 2*podTimeout, "restarted", func(p *corev1.Pod) error {
		cs := containerStatus(p, "app")
		if cs == nil || cs.RestartCount < 1 {
			return fmt.Errorf("not restarted yet: %+v", cs)
		}
		return nil
	})
	nt.waitDescribe(t, ns, "broken-hook", "FailedPostStartHook",
		`Exec lifecycle hook ([sh -c echo hook says no; exit 3]) for Container "app" in Pod "broken-hook_poststart(`,
		"exited with 3", "hook says no")
}

// testEventsAsUpstream: the events of a pod's life read in `kubectl
// describe pod` as upstream's do: FailedMount naming the volume, then
// Scheduled, Pulled, Created and Started, the container events prefixed
// with the container's field path.
func testEventsAsUpstream(t *testing.T, nt *nodeTest) {
	ns := nt.namespace(t, "events")
	nt.apply(t, ns, busyboxPod("evented", "app", sleepHour, `    imagePullPolicy: IfNotPresent
    volumeMounts:
    - name: cfg
      mountPath: /cfg
  volumes:
  - name: cfg
    configMap:
      name: later
`))
	nt.waitDescribe(t, ns, "evented", "FailedMount", `MountVolume.SetUp failed for volume "cfg" : `, `"later" not found`)
	nt.MustKubectl(t, "create", "configmap", "later", "-n", ns, "--from-literal=k=v")
	nt.waitDescribe(t, ns, "evented",
		"Scheduled", "Successfully assigned "+ns+"/evented to "+nt.Name,
		"Pulled", `spec.containers{app}: Container image "`+busyboxImage+`" already present on machine and can be accessed by the pod`,
		"Created", "spec.containers{app}: Container created",
		"Started", "spec.containers{app}: Container started")
}

// testDeleteDuringPostStart: deleting a pod whose postStart hook never
// returns ends the hook, and the pod goes.
func testDeleteDuringPostStart(t *testing.T, nt *nodeTest) {
	ns := nt.namespace(t, "hookdelete")
	nt.apply(t, ns, busyboxPod("stuck-hook", "app", sleepHour, `    lifecycle:
      postStart:
        exec:
          command: ["sleep", "3600"]
`))
	nt.waitDescribe(t, ns, "stuck-hook", "spec.containers{app}: Container started")
	p := nt.waitPod(t, ns, "stuck-hook", podTimeout, "not running while its hook runs", func(p *corev1.Pod) error {
		// No status at all, or a waiting container: the first sync is
		// still in the hook.
		if cs := containerStatus(p, "app"); cs != nil && cs.State.Waiting == nil {
			return fmt.Errorf("want waiting: %+v", cs)
		}
		return nil
	})
	nt.MustKubectl(t, "delete", "pod", "stuck-hook", "-n", ns, "--wait=false")
	nt.waitGone(t, ns, "stuck-hook")
	if cs := containerStatus(p, "app"); cs != nil && cs.State.Running != nil {
		t.Errorf("reported running while its postStart hook ran: %+v", cs)
	}
}
