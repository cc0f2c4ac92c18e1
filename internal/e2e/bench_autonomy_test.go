package e2e

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/wasmkube/wasmkube/internal/testimages"
)

// BenchmarkAgentKill9Restart measures an agent's return after SIGKILL with
// 50 running pods. While it is down, every pod is marked not Ready, as the
// node lifecycle controller marks the pods of an unreachable node; the
// agent must find each container still running (no restart: same task
// PIDs, restart counts and container ids) and report it Ready again. It
// reports the time from the agent's start to its first status write and to
// the last of the 50.
func BenchmarkAgentKill9Restart(b *testing.B) {
	n := StartSplitNode(b, SplitNodeOptions{})
	n.ImportImage(b, testimages.BuildHelloOCIArchive(b, "example.test/hello:bench"))
	ctx := context.Background()
	const ns = "bench-kill9"
	if _, err := n.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	pods := n.Client.CoreV1().Pods(ns)
	rt := watchReady(b, n.Node.Client, ns)
	for j := range benchPods {
		if _, err := pods.Create(ctx, benchPod(fmt.Sprintf("p-%02d", j)), metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	for j := range benchPods {
		rt.wait(b, fmt.Sprintf("p-%02d", j), 3*time.Minute)
	}

	var first, all []time.Duration
	for i := 0; i < b.N; i++ {
		list, err := pods.List(ctx, metav1.ListOptions{})
		if err != nil {
			b.Fatal(err)
		}
		before := map[string]podView{}
		for k := range list.Items {
			before[list.Items[k].Name] = viewOf(&list.Items[k])
		}
		pids := n.TaskPIDs(b)

		n.KillAgent(b)
		for k := range list.Items {
			p := &list.Items[k]
			for c := range p.Status.Conditions {
				if t := p.Status.Conditions[c].Type; t == corev1.PodReady || t == corev1.ContainersReady {
					p.Status.Conditions[c].Status = corev1.ConditionFalse
					p.Status.Conditions[c].Reason = "NodeNotReady"
				}
			}
			if _, err := pods.UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
				b.Fatal(err)
			}
		}
		again := watchReady(b, n.Node.Client, ns)
		start := time.Now()
		n.StartAgent(b)
		var times []time.Duration
		for name := range before {
			times = append(times, again.wait(b, name, 3*time.Minute).Sub(start))
		}
		slices.Sort(times)
		first = append(first, times[0])
		all = append(all, times[len(times)-1])

		list, err = pods.List(ctx, metav1.ListOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if len(list.Items) != benchPods {
			b.Fatalf("%d pods after the restart, want %d", len(list.Items), benchPods)
		}
		for k := range list.Items {
			p := &list.Items[k]
			if now, was := viewOf(p).String(), before[p.Name].String(); now != was {
				b.Errorf("pod %s changed across the restart:\nbefore %s\nafter  %s", p.Name, was, now)
			}
		}
		now := n.TaskPIDs(b)
		for id, pid := range pids {
			if now[id] != pid {
				b.Errorf("container %s: task pid %d before the restart, %d after", id, pid, now[id])
			}
		}
	}
	slices.Sort(first)
	slices.Sort(all)
	b.ReportMetric(float64(percentile(first, 0.5).Milliseconds()), "first-status-ms")
	b.ReportMetric(float64(percentile(all, 0.5).Milliseconds()), "all-reconciled-ms")
}
