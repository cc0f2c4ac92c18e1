package e2e

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/wasmkube/wasmkube/internal/simnode"
)

// deploymentManifest is a Deployment of n replicas with small requests, so
// that the scheduler's resource filter does real work.
func deploymentManifest(name string, replicas int) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: %[1]s}
spec:
  replicas: %[2]d
  selector: {matchLabels: {app: %[1]s}}
  template:
    metadata: {labels: {app: %[1]s}}
    spec:
      containers:
      - name: app
        image: busybox
        resources: {requests: {cpu: 10m, memory: 16Mi}}
`, name, replicas)
}

// benchCluster is the binary's control plane with n simulated nodes.
func benchCluster(b *testing.B, nodes int) (*Server, kubernetes.Interface) {
	s := StartServer(b, ServerOptions{ProbeHTTP: true})
	cfg := s.RESTConfig(b)
	cfg.QPS = -1 // a hundred simulated kubelets must not queue behind one client's rate limit
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		b.Fatal(err)
	}
	specs := make([]simnode.NodeSpec, nodes)
	for i := range specs {
		specs[i] = simnode.NodeSpec{Name: fmt.Sprintf("node-%03d", i), CPU: "32", Memory: "64Gi", Pods: 110}
	}
	ctx, cancel := context.WithCancel(context.Background())
	c, err := simnode.Start(ctx, client, simnode.Options{Nodes: specs})
	if err != nil {
		cancel()
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Stop(); cancel() })
	return s, client
}

// waitBound polls until want pods of the label are bound to a node.
func waitBound(b *testing.B, client kubernetes.Interface, label string, want int, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for {
		list, err := client.CoreV1().Pods("default").List(context.Background(), metav1.ListOptions{
			LabelSelector: label, FieldSelector: "spec.nodeName!=", ResourceVersion: "0"})
		if err == nil && len(list.Items) >= want {
			return
		}
		if time.Now().After(deadline) {
			n := 0
			if list != nil {
				n = len(list.Items)
			}
			b.Fatalf("only %d of %d pods bound after %s (last error %v)", n, want, limit, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// BenchmarkDeploymentBound measures, through the real binary, the time from
// `kubectl apply` of a 1,000-replica Deployment until all its pods are bound,
// on 100 simulated nodes: ReplicaSet creation, scheduling and binding end to
// end.
func BenchmarkDeploymentBound(b *testing.B) {
	s, client := benchCluster(b, 100)
	b.ResetTimer()
	for i := range b.N {
		name := fmt.Sprintf("big-%d", i)
		manifest := writeFile(b, "deploy.yaml", deploymentManifest(name, 1000))
		start := time.Now()
		s.MustKubectl(b, "apply", "-f", manifest)
		waitBound(b, client, "app="+name, 1000, 5*time.Minute)
		b.ReportMetric(time.Since(start).Seconds(), "s-to-1000-bound")
	}
}

// BenchmarkControlPlaneMemory reads the resident memory of the control plane
// process (API server, etcd, scheduler and controllers) idle, then holding
// 10,000 running pods on 100 simulated nodes.
func BenchmarkControlPlaneMemory(b *testing.B) {
	s, client := benchCluster(b, 100)
	report := func(prefix string) {
		status, err := ProcStatus(s.PID())
		if err != nil {
			b.Fatal(err)
		}
		for _, field := range []string{"VmRSS", "RssAnon"} {
			b.ReportMetric(float64(status[field])/1024, prefix+field+"-MiB")
		}
	}
	b.ResetTimer()
	for range b.N {
		time.Sleep(30 * time.Second)
		report("idle-")
		s.MustKubectl(b, "apply", "-f", writeFile(b, "deploy.yaml", deploymentManifest("many", 10000)))
		waitBound(b, client, "app=many", 10000, 10*time.Minute)
		time.Sleep(30 * time.Second)
		report("10k-pods-")
	}
}

// BenchmarkPodStartControlPlane measures what every pod start costs before
// and after its node does anything: create → Running and Ready through the
// binary's API server and scheduler, with a simulated kubelet that writes
// the Running and Ready status the moment it sees the pod bound (no
// sandbox, no container, no events). It is the floor under the node's
// own pod start figures (BenchmarkWasmPodStart): the create, the binding
// and the status write, and the three watch deliveries between them.
func BenchmarkPodStartControlPlane(b *testing.B) {
	_, client := benchCluster(b, 1)
	ctx := context.Background()
	for i := range b.N {
		ns := fmt.Sprintf("floor-%d", i)
		if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
		rt := watchReady(b, client, ns)
		var out []time.Duration
		for j := range startBenchPods {
			time.Sleep(startBenchPause) // as the isolated rounds of BenchmarkWasmPodStart
			p := benchPod(fmt.Sprintf("floor-%02d", j))
			start := time.Now()
			if _, err := client.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
				b.Fatal(err)
			}
			out = append(out, rt.wait(b, p.Name, time.Minute).Sub(start))
		}
		slices.Sort(out)
		b.ReportMetric(float64(percentile(out, 0.5).Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(percentile(out, 0.99).Microseconds())/1000, "p99-ms")
	}
}
