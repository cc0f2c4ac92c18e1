package e2e

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/wasmkube/wasmkube/sandbox/network"
)

// The node tests below are the acceptance list of the node agent issue,
// each run by TestNode against its shared `wasmkube up`, in a namespace of
// its own. Manifests follow the seeds; the hello server stands in for
// Tomcat, busybox httpd for nginx. Pods whose main process is a shell or
// httpd get a short grace period: as PID 1 they ignore SIGTERM, so each
// deletion waits the grace period out before SIGKILL.

// testSeedStandalonePod is the seed's standalone pod: it runs, serves on
// its pod IP, is deleted gracefully, stays deleted, and leaves nothing
// behind on the node.
func testSeedStandalonePod(t *testing.T, nt *nodeTest) {
	ns := nt.namespace(t, "seed-standalone")
	nt.apply(t, ns, `apiVersion: v1
kind: Pod
metadata:
  name: tomcat-test
  labels:
    app: tomcat
spec:
  containers:
  - name: tomcat-java
    ports:
    - containerPort: 8080
    image: `+helloImage+`
    imagePullPolicy: IfNotPresent
`)
	pod := nt.waitRunning(t, ns, "tomcat-test")
	if pod.Spec.NodeName != nt.Name || pod.Status.HostIP == "" || pod.Status.StartTime == nil {
		t.Errorf("nodeName %q hostIP %q startTime %v; want node %s, a host IP and a start time", pod.Spec.NodeName, pod.Status.HostIP, pod.Status.StartTime, nt.Name)
	}
	wide := nt.MustKubectl(t, "get", "pods", "-o", "wide", "-l", "app=tomcat", "-n", ns)
	if !regexp.MustCompile(`(?m)^tomcat-test\s+1/1\s+Running\s+0\s+\S+\s+` + regexp.QuoteMeta(pod.Status.PodIP) + `\s+` + nt.Name + `\s`).MatchString(wide) {
		t.Errorf("kubectl get pods -o wide:\n%s\nwant tomcat-test 1/1 Running on %s with IP %s", wide, nt.Name, pod.Status.PodIP)
	}
	nt.waitHTTP(t, pod, 8080, "/", podTimeout, bodyIs("hello from tomcat-test\n"))
	// What the node holds for the running pod, which must all go with it;
	// seeing it here also shows that the check after deletion can see it.
	held := strings.Join(nt.PodLeftovers(pod.UID), "\n")
	for _, want := range []string{"containerd shim ", "netns pin " + nt.NetnsPin(pod.UID), "cgroup ",
		"link " + network.HostVethName(string(pod.UID)), "IP claim " + pod.Status.PodIP + " "} {
		if !strings.Contains(held, want) {
			t.Errorf("the running pod holds no %q; it holds:\n%s", want, held)
		}
	}

	// Watch from the pod's current version, so that both steps of the
	// graceful deletion are seen however fast the agent is.
	ctx, cancel := context.WithTimeout(context.Background(), podTimeout)
	defer cancel()
	w, err := nt.Client.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{
		FieldSelector:   fields.OneTermEqualSelector("metadata.name", "tomcat-test").String(),
		ResourceVersion: pod.ResourceVersion,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if out := nt.MustKubectl(t, "delete", "pods", "tomcat-test", "-n", ns, "--wait=false"); out != `pod "tomcat-test" deleted from `+ns+" namespace\n" {
		t.Errorf("kubectl delete printed %q", out)
	}
	var marked bool
	for gone := false; !gone; {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				t.Fatalf("watch ended before the pod was gone (deletionTimestamp seen: %t)", marked)
			}
			p, _ := ev.Object.(*corev1.Pod)
			switch {
			case ev.Type == watch.Modified && p != nil && p.DeletionTimestamp != nil:
				if !marked && (p.DeletionGracePeriodSeconds == nil || *p.DeletionGracePeriodSeconds != 30) {
					t.Errorf("deletionGracePeriodSeconds = %v, want the default 30", p.DeletionGracePeriodSeconds)
				}
				marked = true
			case ev.Type == watch.Deleted:
				gone = true
			case ev.Type == watch.Error:
				t.Fatalf("watch error: %v", ev.Object)
			}
		case <-ctx.Done():
			t.Fatalf("pod not gone within %s of kubectl delete (deletionTimestamp seen: %t)", podTimeout, marked)
		}
	}
	if !marked {
		t.Error("the pod went without first being marked with a deletionTimestamp: not a graceful deletion")
	}
	// The agent confirms the deletion only after tearing the sandbox down.
	if left := nt.PodLeftovers(pod.UID); len(left) != 0 {
		t.Errorf("pod gone, but its sandbox remains: %q", left)
	}

	// The seed: nothing brings a standalone pod back.
	time.Sleep(3 * time.Second)
	r := nt.Kubectl(t, "get", "pods", "-l", "app=tomcat", "-n", ns)
	if r.ExitCode != 0 || r.Stdout != "" || r.Stderr != "No resources found in "+ns+" namespace.\n" {
		t.Errorf("kubectl get pods -l app=tomcat after delete:\n%s", r)
	}

	// Its address is free again: a new pod may get it, and does serve.
	nt.apply(t, ns, `apiVersion: v1
kind: Pod
metadata:
  name: tomcat-test-2
spec:
  containers:
  - name: tomcat-java
    image: `+helloImage+`
`)
	pod2 := nt.waitRunning(t, ns, "tomcat-test-2")
	nt.waitHTTP(t, pod2, 8080, "/", podTimeout, bodyIs("hello from tomcat-test-2\n"))
}

// nginxDeployment is the seed's Deployment, with busybox httpd serving a
// page that names the pod.
const nginxDeployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: nginx-test
  labels:
    app: nginx-deploy
spec:
  selector:
    matchLabels:
      app: nginx
  replicas: 2
  template:
    metadata:
      labels:
        app: nginx
    spec:
      terminationGracePeriodSeconds: 3
      containers:
      - name: my-nginx
        image: ` + busyboxImage + `
        imagePullPolicy: IfNotPresent
        command: ["sh", "-c", "echo \"nginx-test $(hostname)\" > /var/www/index.html && exec httpd -f -p 80 -h /var/www"]
        ports:
        - containerPort: 80
`

// testSeedDeployment is the seed's Deployment walk-through on a real node:
// both pods run and serve, a deleted one is replaced by one that serves,
// and deleting the Deployment takes the pods along.
func testSeedDeployment(t *testing.T, nt *nodeTest) {
	ns := nt.namespace(t, "seed-deployment")
	nt.apply(t, ns, nginxDeployment)

	// running waits until the pods are exactly two, both Running and ready.
	running := func() []string {
		t.Helper()
		deadline := time.Now().Add(podTimeout)
		for {
			out := nt.MustKubectl(t, "get", "pods", "-o", "wide", "-l", "app=nginx", "-n", ns)
			if names := runningNginxPods(out); len(names) == 2 && strings.Count(out, "\n") == 3 {
				return names
			}
			if time.Now().After(deadline) {
				t.Fatalf("not exactly two Running 1/1 nginx-test pods within %s:\n%s", podTimeout, out)
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	serves := func(name string) {
		t.Helper()
		if !nginxPodName.MatchString(name) {
			t.Errorf("pod name %q is not nginx-test-<hash>-<5 chars>", name)
		}
		pod := nt.waitRunning(t, ns, name)
		nt.waitHTTP(t, pod, 80, "/", podTimeout, bodyIs("nginx-test "+name+"\n"))
	}

	pods := running()
	for _, name := range pods {
		serves(name)
	}
	if out := nt.MustKubectl(t, "get", "deploy", "-l", "app=nginx-deploy", "-n", ns); !regexp.MustCompile(`(?m)^nginx-test\s+2/2\s+2\s+2\s`).MatchString(out) {
		t.Errorf("kubectl get deploy:\n%s\nwant nginx-test 2/2 up to date and available", out)
	}

	nt.MustKubectl(t, "delete", "pods", pods[0], "-n", ns, "--wait=false")
	now := running()
	for deadline := time.Now().Add(podTimeout); slices.Contains(now, pods[0]); now = running() {
		if time.Now().After(deadline) {
			t.Fatalf("%s still running %s after its deletion", pods[0], podTimeout)
		}
		time.Sleep(500 * time.Millisecond)
	}
	for _, name := range now {
		if name != pods[1] {
			serves(name)
		}
	}

	// The seed's last step: deleting the Deployment takes its pods along.
	if r := nt.KubectlStdin(t, nginxDeployment, "delete", "-n", ns, "-f", "-"); r.ExitCode != 0 ||
		r.Stdout != `deployment.apps "nginx-test" deleted from `+ns+" namespace\n" {
		t.Errorf("kubectl delete -f:\n%s", r)
	}
	nt.waitNoPods(t, ns, "app=nginx")
}

// waitNoPods waits until no pod matches selector in ns.
func (nt *nodeTest) waitNoPods(t *testing.T, ns, selector string) {
	t.Helper()
	deadline := time.Now().Add(podTimeout)
	for {
		list, err := nt.Client.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: selector})
		if err == nil && len(list.Items) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pods %s in %s still there %s after deleting their owner: %v", selector, ns, podTimeout,
				nt.MustKubectl(t, "get", "pods", "-l", selector, "-n", ns))
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// testSidecarSharesEmptyDir is the seeds' sidecar example: a sidecar keeps
// writing the page a web server serves from a shared emptyDir, and fetches
// it back from the server over localhost.
func testSidecarSharesEmptyDir(t *testing.T, nt *nodeTest) {
	ns := nt.namespace(t, "sidecar")
	nt.apply(t, ns, `apiVersion: v1
kind: Pod
metadata:
  name: two-containers
spec:
  terminationGracePeriodSeconds: 3
  volumes:
  - name: shared-data
    emptyDir: {}
  containers:
  - name: web
    image: `+busyboxImage+`
    command: ["httpd", "-f", "-p", "80", "-h", "/var/www"]
    ports:
    - containerPort: 80
    volumeMounts:
    - name: shared-data
      mountPath: /var/www
  - name: sidecar
    image: `+busyboxImage+`
    volumeMounts:
    - name: shared-data
      mountPath: /pod-data
    command:
    - sh
    - -c
    - |
      i=0
      while true; do
        i=$((i+1))
        echo "Hello from the sidecar, update $i" > /pod-data/index.html.tmp
        mv /pod-data/index.html.tmp /pod-data/index.html
        if wget -q -O /pod-data/loopback.tmp http://localhost:80/index.html; then
          mv /pod-data/loopback.tmp /pod-data/loopback.txt
        fi
        sleep 1
      done
`)
	pod := nt.waitRunning(t, ns, "two-containers")
	if row := nt.kubectlRow(t, ns, "two-containers"); row[1] != "2/2" || row[2] != "Running" {
		t.Errorf("kubectl get pods: READY %s STATUS %s, want 2/2 Running", row[1], row[2])
	}
	update := regexp.MustCompile(`^Hello from the sidecar, update (\d+)\n$`)
	count := func(body string) (int, error) {
		m := update.FindStringSubmatch(body)
		if m == nil {
			return 0, fmt.Errorf("body %q is not the sidecar's page", body)
		}
		return strconv.Atoi(m[1])
	}
	first, err := count(nt.waitHTTP(t, pod, 80, "/", podTimeout, func(b string) error { _, err := count(b); return err }))
	if err != nil {
		t.Fatal(err)
	}
	// The sidecar keeps writing: the page changes under the server.
	nt.waitHTTP(t, pod, 80, "/", 30*time.Second, func(b string) error {
		if n, err := count(b); err != nil || n <= first {
			return fmt.Errorf("page %q not updated past %d", b, first)
		}
		return nil
	})
	// What the sidecar fetched from localhost:80 is the server's page.
	nt.waitHTTP(t, pod, 80, "/loopback.txt", 30*time.Second, func(b string) error { _, err := count(b); return err })
}

// testInitContainerRunsFirst: the init container completes before the app
// container starts, and the app serves what it wrote.
func testInitContainerRunsFirst(t *testing.T, nt *nodeTest) {
	ns := nt.namespace(t, "init-first")
	nt.apply(t, ns, `apiVersion: v1
kind: Pod
metadata:
  name: init-ok
spec:
  terminationGracePeriodSeconds: 3
  volumes:
  - name: www
    emptyDir: {}
  initContainers:
  - name: prepare
    image: `+busyboxImage+`
    command: ["sh", "-c", "echo prepared by the init container > /work/index.html; sleep 2"]
    volumeMounts:
    - name: www
      mountPath: /work
  containers:
  - name: web
    image: `+busyboxImage+`
    command: ["sh", "-c", "if [ -f /var/www/index.html ]; then echo app started after init; else echo app started before init; fi > /var/www/order.txt; exec httpd -f -p 80 -h /var/www"]
    volumeMounts:
    - name: www
      mountPath: /var/www
`)
	pod := nt.waitRunning(t, ns, "init-ok")
	nt.waitHTTP(t, pod, 80, "/", podTimeout, bodyIs("prepared by the init container\n"))
	nt.waitHTTP(t, pod, 80, "/order.txt", podTimeout, bodyIs("app started after init\n"))
	initCS, app := containerStatus(pod, "prepare"), containerStatus(pod, "web")
	if initCS == nil || app == nil || app.State.Running == nil {
		t.Fatalf("container statuses:\n%s", podSummary(pod))
	}
	if err := terminated(initCS.State, "Completed", 0); err != nil {
		t.Errorf("init container: %v", err)
	} else if initCS.State.Terminated.FinishedAt.After(app.State.Running.StartedAt.Time) {
		t.Errorf("init container finished at %s, after the app started at %s", initCS.State.Terminated.FinishedAt, app.State.Running.StartedAt)
	}
	if !podCondition(pod, corev1.PodInitialized) {
		t.Errorf("Initialized is not True:\n%s", podSummary(pod))
	}
}

// initFailingPod has an init container that exits 1 before an app that
// would run for an hour.
func initFailingPod(name, restartPolicy string) string {
	return `apiVersion: v1
kind: Pod
metadata:
  name: ` + name + `
spec:
  restartPolicy: ` + restartPolicy + `
  terminationGracePeriodSeconds: 3
  initContainers:
  - name: setup
    image: ` + busyboxImage + `
    command: ["sh", "-c", "echo setup fails; exit 1"]
  containers:
  - name: app
    image: ` + busyboxImage + `
    command: ["sleep", "3600"]
`
}

// testInitContainerFailsNever: with restartPolicy Never a failed init
// container fails the pod, and the app container never starts.
func testInitContainerFailsNever(t *testing.T, nt *nodeTest) {
	ns := nt.namespace(t, "init-fails-never")
	nt.apply(t, ns, initFailingPod("init-fail", "Never"))
	pod := nt.waitTerminated(t, ns, "init-fail", "setup", corev1.PodFailed, "Error", 1)
	if err := neverStarted(containerStatus(pod, "app"), "PodInitializing"); err != nil {
		t.Error(err)
	}
	if cs := mustContainer(t, pod, "setup"); cs.RestartCount != 0 {
		t.Errorf("init container restarted %d times under restartPolicy Never", cs.RestartCount)
	}
	if podCondition(pod, corev1.PodInitialized) {
		t.Error("Initialized is True after the init container failed")
	}
	nt.waitStatus(t, ns, "init-fail", 30*time.Second, "Init:Error")
}

// testInitContainerFailsAlways: with restartPolicy Always a failing init
// container is restarted with back-off, and the app container waits.
func testInitContainerFailsAlways(t *testing.T, nt *nodeTest) {
	ns := nt.namespace(t, "init-fails-always")
	nt.apply(t, ns, initFailingPod("init-crash", "Always"))
	nt.waitStatus(t, ns, "init-crash", podTimeout, "Init:CrashLoopBackOff", "Init:Error")
	pod := nt.waitRestarts(t, ns, "init-crash", "setup", 1, corev1.PodPending)
	if err := neverStarted(containerStatus(pod, "app"), "PodInitializing"); err != nil {
		t.Error(err)
	}
	nt.waitStatus(t, ns, "init-crash", 30*time.Second, "Init:CrashLoopBackOff", "Init:Error")
}

// waitRestarts waits until container has been restarted at least n times,
// last after exiting 1, with the pod in phase.
func (nt *nodeTest) waitRestarts(t *testing.T, ns, name, container string, n int32, phase corev1.PodPhase) *corev1.Pod {
	t.Helper()
	return nt.waitPod(t, ns, name, podTimeout, fmt.Sprintf("%s with %s restarted %d times", phase, container, n), func(p *corev1.Pod) error {
		cs := containerStatus(p, container)
		switch {
		case cs == nil || cs.RestartCount < n:
			return fmt.Errorf("fewer restarts")
		case p.Status.Phase != phase:
			return fmt.Errorf("phase %s", p.Status.Phase)
		}
		return terminated(cs.LastTerminationState, "Error", 1)
	})
}

// waitTerminated waits until the pod is in phase with container
// terminated for reason with exitCode.
func (nt *nodeTest) waitTerminated(t *testing.T, ns, name, container string, phase corev1.PodPhase, reason string, exitCode int32) *corev1.Pod {
	t.Helper()
	return nt.waitPod(t, ns, name, podTimeout, fmt.Sprintf("%s with %s %s", phase, container, reason), func(p *corev1.Pod) error {
		cs := containerStatus(p, container)
		switch {
		case cs == nil:
			return fmt.Errorf("no status for %s", container)
		case p.Status.Phase != phase:
			return fmt.Errorf("phase %s", p.Status.Phase)
		}
		return terminated(cs.State, reason, exitCode)
	})
}

// exitingPod runs one busybox container that exits with code.
func exitingPod(name, restartPolicy string, code int) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: %s
spec:
  restartPolicy: %s
  terminationGracePeriodSeconds: 3
  containers:
  - name: main
    image: %s
    command: ["sh", "-c", "echo exiting with %d; exit %d"]
`, name, restartPolicy, busyboxImage, code, code)
}

// testRestartAlwaysCrashLoops: a container that keeps exiting 1 under
// restartPolicy Always is restarted with back-off, which kubectl shows as
// CrashLoopBackOff.
func testRestartAlwaysCrashLoops(t *testing.T, nt *nodeTest) {
	ns := nt.namespace(t, "restart-always")
	nt.apply(t, ns, exitingPod("crasher", "Always", 1))
	nt.waitStatus(t, ns, "crasher", podTimeout, "CrashLoopBackOff")
	// Back-off is 10s, then 20s: a second restart comes within a minute.
	nt.waitRestarts(t, ns, "crasher", "main", 2, corev1.PodRunning)
	if row := nt.kubectlRow(t, ns, "crasher"); row[1] != "0/1" || row[3] == "0" {
		t.Errorf("kubectl get pods: READY %s RESTARTS %s, want 0/1 and a count", row[1], row[3])
	}
}

// testRestartOnFailureSucceeds: exit 0 under OnFailure completes the pod.
func testRestartOnFailureSucceeds(t *testing.T, nt *nodeTest) {
	ns := nt.namespace(t, "restart-onfailure-ok")
	nt.apply(t, ns, exitingPod("completes", "OnFailure", 0))
	pod := nt.waitTerminated(t, ns, "completes", "main", corev1.PodSucceeded, "Completed", 0)
	if cs := mustContainer(t, pod, "main"); cs.RestartCount != 0 {
		t.Errorf("container restarted %d times after exiting 0 under OnFailure", cs.RestartCount)
	}
	nt.waitStatus(t, ns, "completes", 30*time.Second, "Completed")
}

// testRestartOnFailureRestarts: exit 1 under OnFailure restarts the
// container.
func testRestartOnFailureRestarts(t *testing.T, nt *nodeTest) {
	ns := nt.namespace(t, "restart-onfailure-fail")
	nt.apply(t, ns, exitingPod("retries", "OnFailure", 1))
	nt.waitRestarts(t, ns, "retries", "main", 1, corev1.PodRunning)
}

// testRestartNeverFails: exit 1 under Never fails the pod, no restart.
func testRestartNeverFails(t *testing.T, nt *nodeTest) {
	ns := nt.namespace(t, "restart-never")
	nt.apply(t, ns, exitingPod("fails", "Never", 1))
	nt.waitTerminated(t, ns, "fails", "main", corev1.PodFailed, "Error", 1)
	nt.waitStatus(t, ns, "fails", 30*time.Second, "Error")
	time.Sleep(3 * time.Second) // time for a restart that must not come
	pod := nt.waitTerminated(t, ns, "fails", "main", corev1.PodFailed, "Error", 1)
	if cs := mustContainer(t, pod, "main"); cs.RestartCount != 0 {
		t.Errorf("container restarted %d times under restartPolicy Never", cs.RestartCount)
	}
}

// testMemoryLimitOOMKilled: a container allocating past its memory limit is
// killed by the kernel, which the node reports as OOMKilled.
func testMemoryLimitOOMKilled(t *testing.T, nt *nodeTest) {
	ns := nt.namespace(t, "memory-limit")
	nt.apply(t, ns, `apiVersion: v1
kind: Pod
metadata:
  name: memory-hog
spec:
  restartPolicy: Never
  containers:
  - name: hog
    image: `+helloImage+`
    env:
    - name: HELLO_ALLOC
      value: 200Mi
    resources:
      limits:
        memory: 32Mi
`)
	nt.waitTerminated(t, ns, "memory-hog", "hog", corev1.PodFailed, "OOMKilled", 137)
	nt.waitStatus(t, ns, "memory-hog", 30*time.Second, "OOMKilled")
}

// configObjects are the configMap and secret testConfigMapAndSecret reads.
// The secret's values are given as data, not stringData: what the node
// does with a secret is under test here, not the API server's merging of
// stringData into data.
const configObjects = `apiVersion: v1
kind: ConfigMap
metadata:
  name: app-config
data:
  greeting: hello-from-configmap
  mode: test
---
apiVersion: v1
kind: Secret
metadata:
  name: app-secret
data:
  password: czNjcmV0 # s3cret
  token: YWJjMTIz # abc123
`

// testConfigMapAndSecret: a configMap and a secret reach a container as
// env (valueFrom and envFrom) and as volumes, with their file modes, and
// the volumes follow changes to the objects.
func testConfigMapAndSecret(t *testing.T, nt *nodeTest) {
	ns := nt.namespace(t, "config")
	nt.apply(t, ns, configObjects)
	nt.apply(t, ns, `apiVersion: v1
kind: Pod
metadata:
  name: config-reader
spec:
  terminationGracePeriodSeconds: 3
  volumes:
  - name: config
    configMap:
      name: app-config
  - name: secret
    secret:
      secretName: app-secret
      defaultMode: 0400
  containers:
  - name: web
    image: `+busyboxImage+`
    env:
    - name: GREETING
      valueFrom:
        configMapKeyRef:
          name: app-config
          key: greeting
    - name: PASSWORD
      valueFrom:
        secretKeyRef:
          name: app-secret
          key: password
    envFrom:
    - prefix: CM_
      configMapRef:
        name: app-config
    - prefix: SECRET_
      secretRef:
        name: app-secret
    volumeMounts:
    - name: config
      mountPath: /config/cm
    - name: secret
      mountPath: /config/secret
    command:
    - sh
    - -c
    - |
      env > /var/www/env.txt
      stat -L -c '%a %n' /config/cm/greeting /config/secret/password > /var/www/modes.txt
      while true; do
        cat /config/cm/greeting > /var/www/greeting.tmp && mv /var/www/greeting.tmp /var/www/greeting.txt
        cat /config/secret/password > /var/www/password.tmp && mv /var/www/password.tmp /var/www/password.txt
        sleep 1
      done &
      exec httpd -f -p 80 -h /var/www
`)
	pod := nt.waitRunning(t, ns, "config-reader")
	env := nt.waitHTTP(t, pod, 80, "/env.txt", podTimeout, func(string) error { return nil })
	for _, want := range []string{"GREETING=hello-from-configmap", "PASSWORD=s3cret", "CM_greeting=hello-from-configmap",
		"CM_mode=test", "SECRET_password=s3cret", "SECRET_token=abc123"} {
		if !strings.Contains("\n"+env, "\n"+want+"\n") {
			t.Errorf("container environment lacks %s:\n%s", want, env)
		}
	}
	nt.waitHTTP(t, pod, 80, "/modes.txt", podTimeout, bodyIs("644 /config/cm/greeting\n400 /config/secret/password\n"))
	nt.waitHTTP(t, pod, 80, "/greeting.txt", podTimeout, bodyIs("hello-from-configmap"))
	nt.waitHTTP(t, pod, 80, "/password.txt", podTimeout, bodyIs("s3cret"))

	nt.apply(t, ns, strings.Replace(configObjects, "greeting: hello-from-configmap", "greeting: changed-by-apply", 1))
	nt.MustKubectl(t, "patch", "secret", "app-secret", "-n", ns, "-p", `{"data":{"password":"cm90YXRlZA=="}}`)
	nt.waitHTTP(t, pod, 80, "/greeting.txt", volumeUpdateTimeout, bodyIs("changed-by-apply"))
	nt.waitHTTP(t, pod, 80, "/password.txt", volumeUpdateTimeout, bodyIs("rotated"))
}

// testMissingConfigMap: an env var from a configMap that does not exist
// keeps the container from being created, with upstream's reason.
func testMissingConfigMap(t *testing.T, nt *nodeTest) {
	ns := nt.namespace(t, "config-missing")
	nt.apply(t, ns, `apiVersion: v1
kind: Pod
metadata:
  name: needs-config
spec:
  terminationGracePeriodSeconds: 3
  containers:
  - name: app
    image: `+busyboxImage+`
    command: ["sleep", "3600"]
    env:
    - name: GREETING
      valueFrom:
        configMapKeyRef:
          name: no-such-config
          key: greeting
`)
	nt.waitPod(t, ns, "needs-config", podTimeout, "waiting with CreateContainerConfigError", func(p *corev1.Pod) error {
		cs := containerStatus(p, "app")
		if cs == nil || cs.State.Waiting == nil || cs.State.Waiting.Reason != "CreateContainerConfigError" {
			return fmt.Errorf("not waiting with CreateContainerConfigError")
		}
		if !strings.Contains(cs.State.Waiting.Message, `configmap "no-such-config" not found`) {
			return fmt.Errorf("message %q does not name the missing configmap", cs.State.Waiting.Message)
		}
		if p.Status.Phase != corev1.PodPending {
			return fmt.Errorf("phase %s, want Pending", p.Status.Phase)
		}
		return nil
	})
	nt.waitStatus(t, ns, "needs-config", 30*time.Second, "CreateContainerConfigError")
}
