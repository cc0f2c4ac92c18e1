package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/wasmkube/wasmkube/internal/testimages"
)

// startBenchPods is how many pods of each kind BenchmarkWasmPodStart
// starts one at a time.
const startBenchPods = 20

func wasmBenchPod(name string) *corev1.Pod { return wasmBenchPodOf(name, wasmImage) }

// tinyBenchPod runs the syscall-only guest of the density benchmark.
func tinyBenchPod(name string) *corev1.Pod { return wasmBenchPodOf(name, densityImage) }

func wasmBenchPodOf(name, image string) *corev1.Pod {
	wasm := "wasm"
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"bench": "start"}},
		Spec: corev1.PodSpec{
			RuntimeClassName: &wasm,
			Containers: []corev1.Container{{
				Name: "app", Image: image, ImagePullPolicy: corev1.PullNever,
				Ports: []corev1.ContainerPort{{ContainerPort: 8080}},
			}},
		},
	}
}

// startBenchPause is the quiet before each pod of the isolated rounds:
// the node has finished with the pod before (its status written, its
// image's next sandbox loaded) when the next is created, as for a pod
// started on demand.
const startBenchPause = 500 * time.Millisecond

// BenchmarkWasmPodStart measures create → Running and Ready of wasm pods
// whose module is compiled already, one at a time (the Go net/http test
// server, and the syscall-only guest of the density benchmark), and of OCI
// pods on the same node in the same run: first each pod after a pause
// (isolated), then back to back, each created the moment the one before
// is Ready (burst, which outruns the warm sandboxes). Then the memory of
// each kind of idle pod, after the isolated rounds: the PSS of a wasm
// pod's sandbox process, and of an OCI pod's container processes plus its
// containerd shim.
func BenchmarkWasmPodStart(b *testing.B) {
	n := StartNode(b, NodeOptions{})
	n.ImportImage(b, testimages.BuildWasmOCIArchive(b, wasmImage, repoFile(b, "internal/e2e/testdata/wasmapp")))
	n.ImportImage(b, testimages.BuildWasmOCIArchive(b, densityImage, repoFile(b, "internal/e2e/testdata/wasmtiny")))
	n.ImportImage(b, testimages.BuildHelloOCIArchive(b, "example.test/hello:bench"))
	ctx := context.Background()
	cfg := n.RESTConfig(b)
	cfg.QPS = -1 // back-to-back creates must not queue behind the client's rate limit (5/s)
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
		serial := func(prefix string, newPod func(string) *corev1.Pod, pause time.Duration) []time.Duration {
			var out []time.Duration
			for j := range startBenchPods {
				time.Sleep(pause)
				start := time.Now()
				p := newPod(fmt.Sprintf("%s-%02d", prefix, j))
				if _, err := pods.Create(ctx, p, metav1.CreateOptions{}); err != nil {
					b.Fatal(err)
				}
				out = append(out, rt.wait(b, p.Name, 2*time.Minute).Sub(start))
			}
			slices.Sort(out)
			return out
		}
		report := func(unit string, wasm, tiny, oci []time.Duration) {
			ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
			for _, r := range []struct {
				kind string
				ds   []time.Duration
			}{{"wasm", wasm}, {"tiny", tiny}, {"oci", oci}} {
				b.ReportMetric(ms(percentile(r.ds, 0.5)), r.kind+unit+"-p50-ms")
				b.ReportMetric(ms(percentile(r.ds, 0.99)), r.kind+unit+"-p99-ms")
			}
			b.ReportMetric(float64(percentile(oci, 0.5))/float64(percentile(wasm, 0.5)), "oci/wasm"+unit+"-p50")
			b.ReportMetric(float64(percentile(oci, 0.5))/float64(percentile(tiny, 0.5)), "oci/tiny"+unit+"-p50")
		}
		// The first pod of each image compiles its module into the
		// node's cache.
		for name, newPod := range map[string]func(string) *corev1.Pod{"warm": wasmBenchPod, "warm-tiny": tinyBenchPod} {
			if _, err := pods.Create(ctx, newPod(name), metav1.CreateOptions{}); err != nil {
				b.Fatal(err)
			}
			rt.wait(b, name, 2*time.Minute)
		}
		wasm := serial("wasm", wasmBenchPod, startBenchPause)
		tiny := serial("tiny", tinyBenchPod, startBenchPause)
		oci := serial("oci", benchPod, startBenchPause)
		report("", wasm, tiny, oci)

		time.Sleep(5 * time.Second) // idle
		sandboxOf := func(prefix string) pssSum {
			list, err := pods.List(ctx, metav1.ListOptions{})
			if err != nil {
				b.Fatal(err)
			}
			procs := sandboxProcesses(b, n.DataDir)
			var s pssSum
			for _, p := range list.Items {
				if !strings.HasPrefix(p.Name, prefix+"-") {
					continue
				}
				for sock, pid := range procs {
					if strings.Contains(sock, string(p.UID)) {
						if kb, ok := rollupPSS(fmt.Sprintf("/proc/%d/smaps_rollup", pid)); ok {
							s.total += kb * 1024
							s.count++
						}
					}
				}
			}
			if s.count == 0 {
				b.Fatalf("no sandbox process of the %s pods", prefix)
			}
			return s
		}
		wasmPSS, tinyPSS := sandboxOf("wasm"), sandboxOf("tiny")
		shims := shimPSS(b, n.DataDir)
		hello := processesPSS(b, func(cmdline string) bool { return strings.HasPrefix(cmdline, testimages.HelloBinary+"\x00") })
		b.ReportMetric(float64(wasmPSS.total)/float64(wasmPSS.count)/(1<<20), "wasm-pod-pss-MiB")
		b.ReportMetric(float64(tinyPSS.total)/float64(tinyPSS.count)/(1<<20), "tiny-pod-pss-MiB")
		b.ReportMetric(float64(shims.total/int64(shims.count)+hello.total/int64(hello.count))/(1<<20), "oci-pod-pss-MiB")

		if err := pods.DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: "bench=start"}); err != nil {
			b.Fatal(err)
		}
		waitNoPods(b, n, ns)

		report("-burst", serial("wasmb", wasmBenchPod, 0), serial("tinyb", tinyBenchPod, 0), serial("ocib", benchPod, 0))
		if err := pods.DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: "bench=start"}); err != nil {
			b.Fatal(err)
		}
		waitNoPods(b, n, ns)
	}
}

// processesPSS sums the proportional set size of the processes whose
// NUL-separated command line match accepts.
func processesPSS(b *testing.B, match func(cmdline string) bool) pssSum {
	s := sumPSS(match)
	if s.count == 0 {
		b.Fatal("no process matched")
	}
	return s
}

// sumPSS is processesPSS where no match is a zero sum.
func sumPSS(match func(cmdline string) bool) pssSum {
	var s pssSum
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, cmdline := range procs {
		data, err := os.ReadFile(cmdline)
		if err != nil || !match(string(data)) {
			continue
		}
		if kb, ok := rollupPSS(filepath.Join(filepath.Dir(cmdline), "smaps_rollup")); ok {
			s.total += kb * 1024
			s.count++
		}
	}
	return s
}

// rollupPSS is the Pss line of a smaps_rollup file, in kB.
func rollupPSS(path string) (int64, bool) {
	rollup, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(rollup), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "Pss:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			return kb, err == nil
		}
	}
	return 0, false
}
