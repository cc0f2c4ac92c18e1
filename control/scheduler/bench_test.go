package scheduler

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"
)

// BenchmarkSchedulerThroughput measures pods bound per second on a real
// server: 100 nodes and 5,000 pending pods exist before the scheduler
// starts; the clock runs from Run until the last binding succeeds, informer
// start-up included. Run with -benchtime=1x.
func BenchmarkSchedulerThroughput(b *testing.B) {
	const numNodes, numPods = 100, 5000
	for range b.N {
		b.StopTimer()
		cs := startServer(b)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		for i := range numNodes {
			createNode(b, ctx, cs, nodeSpec{name: fmt.Sprintf("node-%03d", i), cpu: "32", mem: "128Gi", pods: 110})
		}
		created := time.Now()
		var wg sync.WaitGroup
		errs := make(chan error, 32)
		for w := range 32 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < numPods; i += 32 {
					p := &v1.Pod{
						ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("pod-%05d", i), Namespace: "default"},
						Spec: v1.PodSpec{Containers: []v1.Container{{Name: "app", Image: "busybox:1.36",
							Resources: v1.ResourceRequirements{Requests: v1.ResourceList{
								v1.ResourceCPU: resource.MustParse("100m"), v1.ResourceMemory: resource.MustParse("128Mi"),
							}}}}},
					}
					if _, err := cs.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{}); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			b.Fatalf("creating pods: %v", err)
		}
		b.Logf("created %d pods in %v", numPods, time.Since(created).Round(time.Millisecond))

		// Events are part of the load, as in production; the broadcaster
		// stops before the server so that its backlog does not outlive it.
		broadcaster := record.NewBroadcaster()
		broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: cs.CoreV1().Events("")})
		b.Cleanup(broadcaster.Shutdown)
		recorder := broadcaster.NewRecorder(scheme.Scheme, v1.EventSource{Component: v1.DefaultSchedulerName})
		factory := informers.NewSharedInformerFactory(cs, 0)
		s, err := New(cs, factory, recorder, Options{})
		if err != nil {
			b.Fatal(err)
		}
		runCtx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		b.StartTimer()
		start := time.Now()
		go func() { done <- s.Run(runCtx) }()
		var first1000 time.Duration
		for s.Bound() < numPods {
			if first1000 == 0 && s.Bound() >= 1000 {
				first1000 = time.Since(start)
			}
			if time.Since(start) > 5*time.Minute {
				b.Fatalf("only %d of %d pods bound after 5 minutes", s.Bound(), numPods)
			}
			time.Sleep(2 * time.Millisecond)
		}
		elapsed := time.Since(start)
		b.StopTimer()
		stop()
		if err := <-done; err != nil {
			b.Errorf("scheduler: %v", err)
		}
		factory.Shutdown()

		pods, err := cs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{})
		if err != nil {
			b.Fatal(err)
		}
		perNode := map[string]int{}
		for _, p := range pods.Items {
			if p.Spec.NodeName == "" {
				b.Fatalf("pod %s not bound", p.Name)
			}
			perNode[p.Spec.NodeName]++
		}
		lo, hi := numPods, 0
		for _, n := range perNode {
			lo, hi = min(lo, n), max(hi, n)
		}
		if len(perNode) != numNodes || hi > 110 {
			b.Errorf("pods spread over %d nodes, %d..%d per node", len(perNode), lo, hi)
		}
		b.ReportMetric(float64(numPods)/elapsed.Seconds(), "pods/s")
		b.ReportMetric(first1000.Seconds(), "s/first-1000-pods")
		b.Logf("bound %d pods in %v (%.0f pods/s); first 1000 in %v; %d..%d pods per node",
			numPods, elapsed.Round(time.Millisecond), float64(numPods)/elapsed.Seconds(), first1000.Round(time.Millisecond), lo, hi)
		cancel()
	}
}
