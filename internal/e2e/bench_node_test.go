package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/vishvananda/netlink"

	"github.com/wasmkube/wasmkube/internal/testimages"
	"github.com/wasmkube/wasmkube/sandbox/network/networktest"
)

const benchPods = 50

// readyTimes watches a namespace and records when each pod first turns
// Ready, so latencies are measured at the API as a user sees them.
type readyTimes struct {
	mu    sync.Mutex
	ready map[string]time.Time
}

func watchReady(b *testing.B, client kubernetes.Interface, ns string) *readyTimes {
	rt := &readyTimes{ready: map[string]time.Time{}}
	factory := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(ns))
	inf := factory.Core().V1().Pods().Informer()
	record := func(obj any) {
		p, ok := obj.(*corev1.Pod)
		if !ok {
			return
		}
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue && p.Status.Phase == corev1.PodRunning {
				rt.mu.Lock()
				if _, seen := rt.ready[p.Name]; !seen {
					rt.ready[p.Name] = time.Now()
				}
				rt.mu.Unlock()
			}
		}
	}
	inf.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: record, UpdateFunc: func(_, o any) { record(o) }})
	stop := make(chan struct{})
	b.Cleanup(func() { close(stop) })
	factory.Start(stop)
	cache.WaitForCacheSync(stop, inf.HasSynced)
	return rt
}

func (rt *readyTimes) wait(b *testing.B, name string, limit time.Duration) time.Time {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		rt.mu.Lock()
		at, ok := rt.ready[name]
		rt.mu.Unlock()
		if ok {
			return at
		}
		time.Sleep(5 * time.Millisecond)
	}
	b.Fatalf("pod %s not Running and Ready within %s", name, limit)
	return time.Time{}
}

func benchPod(name string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"bench": "start"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "hello", Image: "example.test/hello:bench", ImagePullPolicy: corev1.PullIfNotPresent,
		}}},
	}
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	i := int(float64(len(sorted))*p+0.5) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// BenchmarkOCIPodStart measures create → Running and Ready for OCI pods
// whose image is present, one pod at a time and as a burst of 50, on a
// real `wasmkube up` node; then the memory each running pod costs.
func BenchmarkOCIPodStart(b *testing.B) {
	n := StartNode(b, NodeOptions{})
	n.ImportImage(b, testimages.BuildHelloOCIArchive(b, "example.test/hello:bench"))
	ctx := context.Background()
	cfg := n.RESTConfig(b)
	cfg.QPS = -1 // a burst of creates must not queue behind the client's rate limit
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < b.N; i++ {
		ns := fmt.Sprintf("bench-%d", i)
		if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
		rt := watchReady(b, n.Client, ns)
		pods := client.CoreV1().Pods(ns)

		// One at a time: the latency of a pod on a quiet node.
		var serial []time.Duration
		for j := range benchPods {
			start := time.Now()
			p := benchPod(fmt.Sprintf("serial-%02d", j))
			if _, err := pods.Create(ctx, p, metav1.CreateOptions{}); err != nil {
				b.Fatal(err)
			}
			serial = append(serial, rt.wait(b, p.Name, time.Minute).Sub(start))
		}
		rssBefore := processRSS(b, n.PID())

		// A burst: 50 creates at once, each pod's own latency.
		created := make([]time.Time, benchPods)
		var wg sync.WaitGroup
		for j := range benchPods {
			wg.Add(1)
			go func() {
				defer wg.Done()
				created[j] = time.Now()
				if _, err := pods.Create(ctx, benchPod(fmt.Sprintf("burst-%02d", j)), metav1.CreateOptions{}); err != nil {
					b.Error(err)
				}
			}()
		}
		wg.Wait()
		var burst []time.Duration
		var last time.Time
		for j := range benchPods {
			at := rt.wait(b, fmt.Sprintf("burst-%02d", j), 2*time.Minute)
			burst = append(burst, at.Sub(created[j]))
			if at.After(last) {
				last = at
			}
		}
		slices.Sort(serial)
		slices.Sort(burst)
		b.ReportMetric(float64(percentile(serial, 0.5).Milliseconds()), "serial-p50-ms")
		b.ReportMetric(float64(percentile(serial, 0.99).Milliseconds()), "serial-p99-ms")
		b.ReportMetric(float64(percentile(burst, 0.5).Milliseconds()), "burst-p50-ms")
		b.ReportMetric(float64(percentile(burst, 0.99).Milliseconds()), "burst-p99-ms")
		b.ReportMetric(last.Sub(created[0]).Seconds(), "burst-all-ready-s")

		// Memory of the 50 burst pods: their shims, and what the node
		// process (agent, and the API server's copy of the objects) grew.
		time.Sleep(3 * time.Second)
		shims := shimPSS(b, n.DataDir)
		rssAfter := processRSS(b, n.PID())
		b.ReportMetric(float64(shims.total)/float64(shims.count)/1024, "shim-pss-KiB/pod")
		b.ReportMetric(float64(rssAfter-rssBefore)/benchPods/1024, "node-rss-KiB/pod")

		if err := pods.DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: "bench=start"}); err != nil {
			b.Fatal(err)
		}
		waitNoPods(b, n, ns)
	}
}

func waitNoPods(b *testing.B, n *Node, ns string) {
	deadline := time.Now().Add(PodsGoneTimeout)
	for time.Now().Before(deadline) {
		list, err := n.Client.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{FieldSelector: fields.Everything().String()})
		if err == nil && len(list.Items) == 0 {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	b.Fatalf("pods of %s still there after %s", ns, PodsGoneTimeout)
}

// processRSS is VmRSS in bytes.
func processRSS(b *testing.B, pid int) int64 {
	st, err := ProcStatus(pid)
	if err != nil {
		b.Fatal(err)
	}
	return st["VmRSS"] * 1024
}

type pssSum struct {
	total int64 // bytes
	count int
}

// shimPSS sums the proportional set size of the containerd shims of the
// node whose data dir is dir: PSS splits shared pages (the shim binary)
// among the shims instead of counting them once per shim.
func shimPSS(b *testing.B, dir string) pssSum {
	return processesPSS(b, func(cmdline string) bool {
		return strings.Contains(cmdline, "containerd-shim") && strings.Contains(cmdline, dir)
	})
}

// privateCopy copies the binary, so that the agent under measurement maps
// pages of its own: pages of one file mapped by two processes (the server
// runs the same binary here, unlike on an edge node) count in both RSSes,
// and the kernel will not page out a shared page for only one of them.
func privateCopy(b *testing.B, bin string) string {
	data, err := os.ReadFile(bin)
	if err != nil {
		b.Fatal(err)
	}
	dst := filepath.Join(b.TempDir(), "wasmkube")
	if err := os.WriteFile(dst, data, 0o755); err != nil {
		b.Fatal(err)
	}
	return dst
}

// BenchmarkAgentIdleMemory runs `wasmkube agent` as its own process beside
// a `wasmkube server`, lets it sit Ready with no pods for a minute, and
// reads its resident memory. containerd is the agent's child, a process of
// its own, so it is not counted.
func BenchmarkAgentIdleMemory(b *testing.B) {
	s := StartServer(b, ServerOptions{ProbeHTTP: true, Args: []string{"--cluster-cidr", networktest.FreeSubnet(b)}})
	client, err := kubernetes.NewForConfig(s.RESTConfig(b))
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < b.N; i++ {
		name, bridge := "bench-"+networktest.RandHex(b, 3), "wkb"+networktest.RandHex(b, 3)
		b.Cleanup(func() {
			if link, err := netlink.LinkByName(bridge); err == nil {
				_ = netlink.LinkDel(link)
			}
		})
		agent := StartProcess(b, "agent", privateCopy(b, s.Bin), nil, "agent", "--kubeconfig", s.Kubeconfig,
			"--data-dir", b.TempDir(), "--node-name", name, "--bridge-name", bridge)
		deadline := time.Now().Add(NodeReadyTimeout)
		for {
			node, err := client.CoreV1().Nodes().Get(context.Background(), name, metav1.GetOptions{})
			if err == nil && nodeReady(node) {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("node %s not Ready within %s", name, NodeReadyTimeout)
			}
			time.Sleep(100 * time.Millisecond)
		}
		time.Sleep(time.Minute) // idle: lease renewals and status checks only
		st, err := ProcStatus(agent.PID())
		if err != nil {
			b.Fatal(err)
		}
		// /proc/<pid>/status counts in kB.
		b.ReportMetric(float64(st["VmRSS"])/1024, "rss-MiB")
		b.ReportMetric(float64(st["RssAnon"])/1024, "anon-MiB")
		b.ReportMetric(float64(st["RssFile"])/1024, "file-MiB")
		agent.Stop(b)
	}
}
