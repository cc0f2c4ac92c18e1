package e2e

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/vishvananda/netlink"

	"github.com/wasmkube/wasmkube/internal/testimages"
	"github.com/wasmkube/wasmkube/runtime/agent"
	"github.com/wasmkube/wasmkube/sandbox/network/networktest"
)

var densityPods = flag.Int("density-pods", 500, "wasm pods BenchmarkWasmDensity runs at once on one node")

const (
	// densityImage is internal/e2e/testdata/wasmtiny, a syscall-only
	// HTTP responder: a net/http guest costs about three times its memory.
	densityImage = "wasmkube.test/e2e/wasmtiny:v1"
	// densityMaskSize gives the node a /22: 1022 pod addresses.
	densityMaskSize = 22
	densityMaxPods  = 600
	// densityMinAvailable is the MemAvailable under which no more pods are
	// created: the benchmark stops short rather than push the machine,
	// shared with other work, into the OOM killer.
	densityMinAvailable = 2 << 30
	// densityCreators create pods in parallel, as a ReplicaSet's burst.
	densityCreators = 16
	// densityStall is how long the Ready count may stay still before the
	// benchmark gives up and says which pods are stuck.
	densityStall = 3 * time.Minute
	densityGone  = 5 * time.Minute
)

func densityPod(name string) *corev1.Pod {
	wasm := "wasm"
	grace := int64(1)
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"bench": "density"}},
		Spec: corev1.PodSpec{
			RuntimeClassName:              &wasm,
			TerminationGracePeriodSeconds: &grace,
			Containers: []corev1.Container{{
				Name: "app", Image: densityImage, ImagePullPolicy: corev1.PullNever,
				Ports: []corev1.ContainerPort{{ContainerPort: 8080}},
			}},
		},
	}
}

// BenchmarkWasmDensity runs -density-pods (500) wasm pods at once on one
// `wasmkube up` node (--max-pods 600, a /22 pod CIDR): the time from the
// first create to the last pod Running and Ready, then, after the node sat
// idle, its memory: the machine's used memory (MemTotal - MemAvailable)
// over what it was before the node started, and the PSS of the node's
// processes (`up`, its containerd, shims, the pods' sandbox processes).
// Pods stop being created when MemAvailable falls under 2 GiB; the
// benchmark then fails saying how many were reached.
func BenchmarkWasmDensity(b *testing.B) {
	want := *densityPods
	usedBefore, availBefore := memUsed(b)
	b.Logf("before the node: %d MiB used, %d MiB available; %d pods wanted", usedBefore>>20, availBefore>>20, want)
	n := StartNode(b, NodeOptions{
		ClusterCIDR: networktest.FreeSubnetOfSize(b, densityMaskSize),
		Args: []string{"--max-pods", strconv.Itoa(densityMaxPods),
			"--node-cidr-mask-size", strconv.Itoa(densityMaskSize)},
	})
	node, err := n.Client.CoreV1().Nodes().Get(context.Background(), n.Name, metav1.GetOptions{})
	if err != nil {
		b.Fatal(err)
	}
	if pods := node.Status.Capacity.Pods().Value(); pods != densityMaxPods || !strings.HasSuffix(node.Spec.PodCIDR, "/"+strconv.Itoa(densityMaskSize)) {
		b.Fatalf("node has pods capacity %d and pod CIDR %s, want %d and a /%d", pods, node.Spec.PodCIDR, densityMaxPods, densityMaskSize)
	}
	n.ImportImage(b, testimages.BuildWasmOCIArchive(b, densityImage, repoFile(b, "internal/e2e/testdata/wasmtiny")))
	rc := n.RESTConfig(b)
	rc.QPS = -1 // no client-side rate limit: the node is what is measured
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ns := fmt.Sprintf("density-%d", i)
		if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
		rt := watchReady(b, n.Client, ns)
		start := time.Now()
		created, stopped := createDensityPods(b, client, ns, want)
		if stopped != "" {
			b.Logf("stopped creating pods after %d: %s", created, stopped)
		}
		last := waitDensityReady(b, client, rt, ns, created)
		took := last.Sub(start)
		b.Logf("%d wasm pods Running and Ready %s after the first create", created, took.Round(time.Millisecond))
		if created < want {
			b.Fatalf("reached %d of %d pods in %s: %s", created, want, took.Round(time.Millisecond), stopped)
		}
		b.ReportMetric(took.Seconds(), fmt.Sprintf("time-to-%d-s", want))

		time.Sleep(10 * time.Second) // idle: startup garbage collected, status settled
		reportDensityMemory(b, n, want, usedBefore)
		reportDensityLimits(b, n, want)
		spotCheckHTTP(b, client, ns)

		del := time.Now()
		grace := int64(1)
		if err := client.CoreV1().Pods(ns).DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: &grace}, metav1.ListOptions{LabelSelector: "bench=density"}); err != nil {
			b.Fatal(err)
		}
		waitDensityGone(b, client, ns)
		b.ReportMetric(time.Since(del).Seconds(), "delete-all-s")
	}
}

// createDensityPods creates want pods with densityCreators in parallel and
// returns how many were created, and why it stopped short if it did.
func createDensityPods(b *testing.B, client kubernetes.Interface, ns string, want int) (int, string) {
	var (
		next, created atomic.Int64
		mu            sync.Mutex
		stopped       string
		wg            sync.WaitGroup
	)
	stop := func(why string) {
		mu.Lock()
		if stopped == "" {
			stopped = why
		}
		mu.Unlock()
	}
	isStopped := func() bool { mu.Lock(); defer mu.Unlock(); return stopped != "" }
	for range densityCreators {
		wg.Go(func() {
			for !isStopped() {
				j := int(next.Add(1)) - 1
				if j >= want {
					return
				}
				if _, avail, err := readMemInfo(); err != nil || avail < densityMinAvailable {
					if err != nil {
						stop(err.Error())
						return
					}
					stop(fmt.Sprintf("MemAvailable %d MiB is under %d MiB", avail>>20, densityMinAvailable>>20))
					return
				}
				if _, err := client.CoreV1().Pods(ns).Create(context.Background(), densityPod(fmt.Sprintf("tiny-%03d", j)), metav1.CreateOptions{}); err != nil {
					stop(fmt.Sprintf("create pod %d: %v", j, err))
					return
				}
				created.Add(1)
			}
		})
	}
	wg.Wait()
	return int(created.Load()), stopped
}

// waitDensityReady waits until count pods of ns are Running and Ready and
// returns when the last one turned so. It fails, naming stuck pods and
// their last events, when the count stalls, and stops waiting when memory
// runs low.
func waitDensityReady(b *testing.B, client kubernetes.Interface, rt *readyTimes, ns string, count int) time.Time {
	progress, moved := 0, time.Now()
	for {
		rt.mu.Lock()
		ready := len(rt.ready)
		var last time.Time
		for _, at := range rt.ready {
			if at.After(last) {
				last = at
			}
		}
		rt.mu.Unlock()
		if ready >= count {
			return last
		}
		if ready != progress {
			progress, moved = ready, time.Now()
		}
		if _, avail := memUsed(b); avail < densityMinAvailable/2 {
			b.Fatalf("%d of %d pods Ready when MemAvailable fell to %d MiB: stopping", ready, count, avail>>20)
		}
		if time.Since(moved) > densityStall {
			b.Fatalf("%d of %d pods Ready, none more for %s:\n%s", ready, count, densityStall, stuckPods(client, ns, rt))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stuckPods describes up to ten pods that are not Ready, with the events
// about them.
func stuckPods(client kubernetes.Interface, ns string, rt *readyTimes) string {
	ctx := context.Background()
	list, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err.Error()
	}
	events, _ := client.CoreV1().Events(ns).List(ctx, metav1.ListOptions{})
	var out []string
	rt.mu.Lock()
	defer rt.mu.Unlock()
	for _, p := range list.Items {
		if _, ok := rt.ready[p.Name]; ok || len(out) >= 10 {
			continue
		}
		line := fmt.Sprintf("%s: phase %s, node %q", p.Name, p.Status.Phase, p.Spec.NodeName)
		for _, c := range p.Status.Conditions {
			if c.Status != corev1.ConditionTrue {
				line += fmt.Sprintf(", %s=%s %s %s", c.Type, c.Status, c.Reason, c.Message)
			}
		}
		for _, cs := range p.Status.ContainerStatuses {
			if w := cs.State.Waiting; w != nil {
				line += fmt.Sprintf(", waiting %s: %s", w.Reason, w.Message)
			}
		}
		if events != nil {
			for _, e := range events.Items {
				if e.InvolvedObject.Name == p.Name {
					line += fmt.Sprintf("\n    event %s %s: %s", e.Type, e.Reason, e.Message)
				}
			}
		}
		out = append(out, line)
	}
	return strings.Join(out, "\n")
}

// reportDensityMemory reports the machine's used memory over usedBefore,
// and the PSS of the node's processes, in total and per pod.
func reportDensityMemory(b *testing.B, n *Node, pods int, usedBefore int64) {
	used, avail := memUsed(b)
	up := processPSS(b, n.PID())
	ctrd := sumPSS(func(cmdline string) bool {
		return strings.HasSuffix(strings.SplitN(cmdline, "\x00", 2)[0], "containerd") && strings.Contains(cmdline, n.DataDir)
	})
	shims := sumPSS(func(cmdline string) bool {
		return strings.Contains(cmdline, "containerd-shim") && strings.Contains(cmdline, n.DataDir)
	})
	sandboxes := sumPSS(func(cmdline string) bool {
		return strings.Contains(cmdline, "wasmkube-sandbox\x00serve") && strings.Contains(cmdline, n.DataDir)
	})
	// Beside the pods' sandboxes, the node keeps warm ones (loaded with the
	// module of a recently started image, for the next pod of it); their
	// memory is the node's too.
	podSandboxes := len(sandboxProcesses(b, n.DataDir))
	if podSandboxes != pods {
		b.Errorf("%d pod sandbox processes for %d pods", podSandboxes, pods)
	}
	if warm := sandboxes.count - podSandboxes; warm < 0 || warm > agent.DefaultWarmSandboxes {
		b.Errorf("%d sandbox processes, %d of them pods': %d warm ones, want at most %d", sandboxes.count, podSandboxes, warm, agent.DefaultWarmSandboxes)
	}
	if ctrd.count != 1 {
		b.Errorf("%d containerd processes of the node, want 1", ctrd.count)
	}
	total := up + ctrd.total + shims.total + sandboxes.total
	mib := func(v int64) float64 { return float64(v) / (1 << 20) }
	b.Logf("used %d MiB (%+d MiB over before the node), %d MiB available; PSS: up %.0f MiB, containerd %.0f MiB, %d shims %.0f MiB, %d sandboxes %.0f MiB",
		used>>20, (used-usedBefore)>>20, avail>>20, mib(up), mib(ctrd.total), shims.count, mib(shims.total), sandboxes.count, mib(sandboxes.total))
	b.ReportMetric(mib(used-usedBefore), "node-used-MiB")
	b.ReportMetric(mib(used-usedBefore)/float64(pods), "node-used-per-pod-MiB")
	b.ReportMetric(mib(total), "pss-total-MiB")
	b.ReportMetric(mib(total)/float64(pods), "pss-per-pod-MiB")
	b.ReportMetric(mib(up), "up-pss-MiB")
	b.ReportMetric(mib(ctrd.total), "containerd-pss-MiB")
	b.ReportMetric(mib(sandboxes.total)/float64(max(1, sandboxes.count)), "sandbox-pss-MiB")
}

// reportDensityLimits reports what the pods use of the machine's limits:
// open files and threads of `up` (ulimit -n, threads-max), threads of the
// sandboxes (pid_max), and the bridge's ports (a Linux bridge takes 1024).
func reportDensityLimits(b *testing.B, n *Node, pods int) {
	count := func(dir string) int {
		entries, err := os.ReadDir(dir)
		if err != nil {
			b.Fatal(err)
		}
		return len(entries)
	}
	sandboxThreads := 0
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, cmdline := range procs {
		data, err := os.ReadFile(cmdline)
		if err == nil && strings.Contains(string(data), "wasmkube-sandbox\x00serve") && strings.Contains(string(data), n.DataDir) {
			if entries, err := os.ReadDir(filepath.Join(filepath.Dir(cmdline), "task")); err == nil {
				sandboxThreads += len(entries)
			}
		}
	}
	bridge, err := netlink.LinkByName(n.Bridge)
	if err != nil {
		b.Fatal(err)
	}
	links, err := netlink.LinkList()
	if err != nil {
		b.Fatal(err)
	}
	ports := 0
	for _, l := range links {
		if l.Attrs().MasterIndex == bridge.Attrs().Index {
			ports++
		}
	}
	if ports != pods {
		b.Errorf("%d ports on bridge %s for %d pods", ports, n.Bridge, pods)
	}
	fds, threads := count(fmt.Sprintf("/proc/%d/fd", n.PID())), count(fmt.Sprintf("/proc/%d/task", n.PID()))
	b.Logf("up: %d open files, %d threads; sandboxes: %d threads; bridge %s: %d ports", fds, threads, sandboxThreads, n.Bridge, ports)
	b.ReportMetric(float64(fds), "up-fds")
	b.ReportMetric(float64(sandboxThreads)/float64(pods), "sandbox-threads")
}

// spotCheckHTTP asks a few pods, spread over the range, for their answer.
func spotCheckHTTP(b *testing.B, client kubernetes.Interface, ns string) {
	list, err := client.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: "bench=density"})
	if err != nil {
		b.Fatal(err)
	}
	for k := 0; k < 5 && len(list.Items) > 0; k++ {
		p := list.Items[k*(len(list.Items)-1)/4]
		body, err := httpGet(fmt.Sprintf("http://%s:8080/", p.Status.PodIP))
		if err != nil || body != "ok\n" {
			b.Errorf("GET pod %s at %s: %q, %v", p.Name, p.Status.PodIP, body, err)
		}
	}
}

// waitDensityGone waits until every pod of ns is gone.
func waitDensityGone(b *testing.B, client kubernetes.Interface, ns string) {
	deadline := time.Now().Add(densityGone)
	left := -1
	for time.Now().Before(deadline) {
		list, err := client.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{})
		if err == nil {
			if left = len(list.Items); left == 0 {
				return
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	b.Fatalf("%d pods of %s still there %s after deleting them", left, ns, densityGone)
}

// memUsed is the machine's MemTotal - MemAvailable, and MemAvailable, in
// bytes.
func memUsed(b *testing.B) (used, available int64) {
	used, available, err := readMemInfo()
	if err != nil {
		b.Fatal(err)
	}
	return used, available
}

func readMemInfo() (used, available int64, err error) {
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, 0, err
	}
	var total int64
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "MemTotal:":
			total = kb << 10
		case "MemAvailable:":
			available = kb << 10
		}
	}
	if total == 0 || available == 0 {
		return 0, 0, errors.New("no MemTotal or MemAvailable in /proc/meminfo")
	}
	return total - available, available, nil
}

// processPSS is one process's PSS in bytes.
func processPSS(b *testing.B, pid int) int64 {
	kb, ok := rollupPSS(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if !ok {
		b.Fatalf("no PSS for process %d", pid)
	}
	return kb << 10
}
