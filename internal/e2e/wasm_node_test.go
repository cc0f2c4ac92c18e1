package e2e

import (
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wasmkube/wasmkube/sandbox/cgroups"
	corev1 "k8s.io/api/core/v1"
)

// wasmImage is internal/e2e/testdata/wasmapp packed as a wasm image:
// one layer holding /app.wasm, entrypoint ["/app.wasm"].
const wasmImage = "wasmkube.test/e2e/wasmapp:v1"

// TestNodeWasm runs wasm containers on a `wasmkube up` of its own, every
// check through kubectl: a wasm pod serving HTTP on its pod IP with its
// environment and volumes, logs and exec, a Deployment scaled to 20, a
// crash loop and an out-of-memory guest.
func TestNodeWasm(t *testing.T) {
	nt := startNodeTest(t, NodeOptions{}, append([]string{wasmImage, busyboxImage}, wasmExampleImages...)...)
	t.Run("wasm", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			run  func(*testing.T, *nodeTest)
		}{
			{"ServesHTTP", testWasmServesHTTP},
			{"LogsAndExec", testWasmLogsAndExec},
			{"Deployment20", testWasmDeployment20},
			{"CrashLoopBackOff", testWasmCrashLoop},
			{"OOMKilled", testWasmOOMKilled},
			{"ExampleLogCollection", testWasmLogCollection},
			{"ExampleCodeSync", testWasmCodeSync},
			{"ExampleLocalhost", testWasmLocalhost},
		} {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				tc.run(t, nt)
			})
		}
	})
}

// wasmPod is a pod of one wasm container serving on 8080, with a
// configMap volume, an emptyDir, and variables from the downward API and a
// configMap; limit is one resource limit ("memory: 64Mi"), and args, when
// given, pick another part for the guest to play.
func wasmPod(name, restartPolicy, limit string, args ...string) string {
	argList := ""
	if len(args) > 0 {
		argList = fmt.Sprintf("\n    args: [%q]", strings.Join(args, `", "`))
	}
	limits := ""
	if limit != "" {
		limits = fmt.Sprintf("\n    resources:\n      limits:\n        %s", limit)
	}
	return fmt.Sprintf(`apiVersion: v1
kind: ConfigMap
metadata:
  name: %[1]s-config
data:
  greeting: hello from a configMap
---
apiVersion: v1
kind: Pod
metadata:
  name: %[1]s
  labels:
    app: %[1]s
spec:
  restartPolicy: %[2]s
  terminationGracePeriodSeconds: 5
  containers:
  - name: app
    image: %[3]s
    imagePullPolicy: Never%[4]s%[5]s
    ports:
    - containerPort: 8080
    env:
    - name: POD_NAME
      valueFrom:
        fieldRef:
          fieldPath: metadata.name
    envFrom:
    - configMapRef:
        name: %[1]s-config
    readinessProbe:
      exec:
        command: ["wasmapp", "echo", "ready"]
      periodSeconds: 1
    volumeMounts:
    - name: config
      mountPath: /config
    - name: data
      mountPath: /data
  volumes:
  - name: config
    configMap:
      name: %[1]s-config
  - name: data
    emptyDir: {}
`, name, restartPolicy, wasmImage, argList, limits)
}

func testWasmServesHTTP(t *testing.T, nt *nodeTest) {
	ns := nt.namespace(t, "wasm-http")
	nt.apply(t, ns, wasmPod("web", "Always", "cpu: 500m"))
	pod := nt.waitRunning(t, ns, "web")
	want := func(want string) func(string) error {
		return func(body string) error {
			if strings.TrimSpace(body) != want {
				return fmt.Errorf("body %q, want %q", body, want)
			}
			return nil
		}
	}
	nt.waitHTTP(t, pod, 8080, "/", 30*time.Second, want("hello from wasm web"))
	nt.waitHTTP(t, pod, 8080, "/env/POD_NAME", 5*time.Second, want("web"))
	nt.waitHTTP(t, pod, 8080, "/env/greeting", 5*time.Second, want("hello from a configMap"))
	nt.waitHTTP(t, pod, 8080, "/file?path=/config/greeting", 5*time.Second, want("hello from a configMap"))
	// Nothing outside the preopened volumes exists for the guest.
	if body, err := httpGet(fmt.Sprintf("http://%s:8080/file?path=/etc/passwd", pod.Status.PodIP)); err == nil {
		t.Errorf("the guest read the host's /etc/passwd: %q", body)
	}
	cs := containerStatus(pod, "app")
	if cs == nil || !cs.Ready || cs.ContainerID == "" || cs.State.Running == nil {
		t.Fatalf("container status %+v", cs)
	}
	checkSandboxPlacement(t, nt, pod, "50000 100000")
}

// checkSandboxPlacement checks that the pod's sandbox process lives in the
// pod's network namespace and in the leaf wasm-sandbox of the pod's
// cgroup, whose cpu.max carries the wasm containers' CPU limit.
func checkSandboxPlacement(t *testing.T, nt *nodeTest, pod *corev1.Pod, cpuMax string) {
	t.Helper()
	var pid int
	for sock, p := range sandboxProcesses(t, nt.DataDir) {
		if strings.Contains(sock, string(pod.UID)) {
			pid = p
		}
	}
	if pid == 0 {
		t.Fatalf("no sandbox process for pod %s", pod.UID)
	}
	var procNS, podNS syscall.Stat_t
	if err := syscall.Stat(fmt.Sprintf("/proc/%d/ns/net", pid), &procNS); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Stat(nt.NetnsPin(pod.UID), &podNS); err != nil {
		t.Fatal(err)
	}
	if procNS.Ino != podNS.Ino {
		t.Errorf("sandbox process %d is in netns %d, the pod's is %d", pid, procNS.Ino, podNS.Ino)
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("/wasmkube/%s/pod%s/wasm-sandbox", nt.Name, pod.UID)
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		// Every hierarchy: cgroup2's "0::", and the v1 ones of a hybrid
		// host, where the cpu controller may be.
		if f := strings.SplitN(line, ":", 3); len(f) != 3 || f[2] != want {
			t.Errorf("sandbox process %d: cgroup line %q, want path %s", pid, line, want)
		}
	}
	hs, err := cgroups.Hierarchies()
	if err != nil {
		t.Fatal(err)
	}
	cg := cgroups.ForPath(hs, want)
	got, err := cg.Get("cpu", "cpu.max")
	if err != nil { // cpu on a v1 hierarchy
		got, err = cg.Get("cpu", "cpu.cfs_quota_us")
		cpuMax = strings.Fields(cpuMax)[0]
	}
	if err != nil || strings.TrimSpace(got) != cpuMax {
		t.Errorf("CPU quota of the sandbox cgroup is %q (%v), want %q", strings.TrimSpace(got), err, cpuMax)
	}
}

func testWasmLogsAndExec(t *testing.T, nt *nodeTest) {
	ns := nt.namespace(t, "wasm-exec")
	nt.apply(t, ns, wasmPod("web", "Always", ""))
	pod := nt.waitRunning(t, ns, "web")
	nt.waitHTTP(t, pod, 8080, "/logged", 30*time.Second, func(string) error { return nil })
	nt.waitLogs(t, ns, "GET /logged", "web")
	if logs := nt.MustKubectl(t, "-n", ns, "logs", "web"); !strings.HasPrefix(logs, "serving on") {
		t.Errorf("kubectl logs starts %q, want the guest's first line", logs)
	}
	if out := nt.MustKubectl(t, "-n", ns, "exec", "web", "--", "wasmapp", "echo", "hi", "there"); out != "hi there\n" {
		t.Errorf("exec echo printed %q", out)
	}
	r := nt.Kubectl(t, "-n", ns, "exec", "web", "--", "wasmapp", "exit", "7")
	if r.ExitCode != 7 {
		t.Errorf("exec exit 7: %s", r)
	}
	// exec shares the container's volumes: what it writes, the server
	// reads; the configMap volume is read-only.
	nt.MustKubectl(t, "-n", ns, "exec", "web", "--", "wasmapp", "write", "/data/note", "written by exec")
	nt.waitHTTP(t, pod, 8080, "/file?path=/data/note", 5*time.Second, func(body string) error {
		if body != "written by exec" {
			return fmt.Errorf("body %q", body)
		}
		return nil
	})
	if r := nt.Kubectl(t, "-n", ns, "exec", "web", "--", "wasmapp", "write", "/config/x", "y"); r.ExitCode == 0 {
		t.Errorf("exec wrote into the read-only configMap volume: %s", r)
	}
	r = nt.KubectlStdin(t, "from stdin\n", "-n", ns, "exec", "-i", "web", "--", "wasmapp", "cat", "-")
	if r.ExitCode != 0 || r.Stdout != "from stdin\n" {
		t.Errorf("exec -i cat -: %s", r)
	}
}

func testWasmDeployment20(t *testing.T, nt *nodeTest) {
	ns := nt.namespace(t, "wasm-deploy")
	nt.apply(t, ns, fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: wasm-web
spec:
  replicas: 2
  selector:
    matchLabels:
      app: wasm-web
  template:
    metadata:
      labels:
        app: wasm-web
    spec:
      runtimeClassName: wasm
      terminationGracePeriodSeconds: 5
      containers:
      - name: app
        image: %s
        imagePullPolicy: Never
        ports:
        - containerPort: 8080
`, wasmImage))
	nt.MustKubectl(t, "-n", ns, "rollout", "status", "deploy/wasm-web", "--timeout=120s")
	nt.MustKubectl(t, "-n", ns, "scale", "deploy/wasm-web", "--replicas=20")
	nt.MustKubectl(t, "-n", ns, "rollout", "status", "deploy/wasm-web", "--timeout=180s")
	out := nt.MustKubectl(t, "-n", ns, "get", "pods", "-l", "app=wasm-web", "-o",
		`jsonpath={range .items[*]}{.metadata.name} {.status.podIP} {.status.phase}{"\n"}{end}`)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 20 {
		t.Fatalf("%d pods, want 20:\n%s", len(lines), out)
	}
	for _, line := range lines {
		f := strings.Fields(line)
		if len(f) != 3 || f[2] != string(corev1.PodRunning) {
			t.Fatalf("pod line %q", line)
		}
		body, err := httpGet(fmt.Sprintf("http://%s:8080/", f[1]))
		if err != nil || strings.TrimSpace(body) != "hello from wasm "+f[0] {
			t.Errorf("pod %s: %q, %v", f[0], body, err)
		}
	}
	nt.MustKubectl(t, "-n", ns, "delete", "deploy/wasm-web")
	nt.waitNoPods(t, ns, "app=wasm-web")
}

func testWasmCrashLoop(t *testing.T, nt *nodeTest) {
	ns := nt.namespace(t, "wasm-crash")
	nt.apply(t, ns, wasmPod("crasher", "Always", "", "crash"))
	nt.waitStatus(t, ns, "crasher", podTimeout, "CrashLoopBackOff")
	pod := nt.waitPod(t, ns, "crasher", podTimeout, "restarted", func(p *corev1.Pod) error {
		cs := containerStatus(p, "app")
		if cs == nil || cs.RestartCount < 1 {
			return fmt.Errorf("no restart yet")
		}
		return terminated(cs.LastTerminationState, "Error", 3)
	})
	if cs := containerStatus(pod, "app"); cs.State.Waiting == nil && cs.State.Running == nil {
		t.Errorf("state %s", stateString(cs.State))
	}
	if logs := nt.MustKubectl(t, "-n", ns, "logs", "crasher", "--previous"); !strings.Contains(logs, "crashing on purpose") {
		t.Errorf("logs --previous: %q", logs)
	}
}

func testWasmOOMKilled(t *testing.T, nt *nodeTest) {
	ns := nt.namespace(t, "wasm-oom")
	nt.apply(t, ns, wasmPod("hog", "Never", "memory: 64Mi", "alloc"))
	nt.waitTerminated(t, ns, "hog", "app", corev1.PodFailed, "OOMKilled", 137)
	nt.waitStatus(t, ns, "hog", 30*time.Second, "OOMKilled")
	logs := nt.MustKubectl(t, "-n", ns, "logs", "hog")
	if !strings.Contains(logs, "allocated 1 MiB") || strings.Contains(logs, "allocated 64 MiB") {
		t.Errorf("the guest's allocations do not stop under its 64Mi limit:\n%s", lastLines(logs, 3))
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
