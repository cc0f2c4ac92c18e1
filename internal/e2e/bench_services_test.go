package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/wasmkube/wasmkube/internal/testimages"
)

// BenchmarkServiceLatency measures an HTTP request from the node to one
// pod, on a new connection each time, through the Service's ClusterIP (the
// socket hook translates the connect) and straight to the pod IP,
// alternating the two in the same run; reported as their medians and the
// ratio ClusterIP / pod IP.
//
//	WASMKUBE_BIN=$PWD/bin/wasmkube go test -run '^$' -bench ServiceLatency -benchtime 5000x ./internal/e2e/
func BenchmarkServiceLatency(b *testing.B) {
	n := StartNode(b, NodeOptions{})
	n.ImportImage(b, testimages.BuildHelloOCIArchive(b, "example.test/hello:bench"))
	ctx := context.Background()
	pod := benchPod("web")
	pod.Labels = map[string]string{"app": "web"}
	if _, err := n.Client.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	svc, err := n.Client.CoreV1().Services("default").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"},
			Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(testimages.HelloPort)}}},
	}, metav1.CreateOptions{})
	if err != nil {
		b.Fatal(err)
	}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	get := func(url string) error {
		resp, err := client.Get(url)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		_, err = io.Copy(io.Discard, resp.Body)
		return err
	}
	vip := fmt.Sprintf("http://%s/", svc.Spec.ClusterIP)
	var direct string
	deadline := time.Now().Add(2 * time.Minute)
	for {
		p, err := n.Client.CoreV1().Pods("default").Get(ctx, "web", metav1.GetOptions{})
		if err == nil && p.Status.PodIP != "" {
			direct = fmt.Sprintf("http://%s:%d/", p.Status.PodIP, testimages.HelloPort)
			if get(direct) == nil && get(vip) == nil {
				break
			}
		}
		if time.Now().After(deadline) {
			b.Fatalf("the pod and its Service never answered: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	var viaService, viaPod []time.Duration
	timed := func(url string, into *[]time.Duration) {
		start := time.Now()
		if err := get(url); err != nil {
			b.Fatal(err)
		}
		*into = append(*into, time.Since(start))
	}
	for i := 0; b.Loop(); i++ {
		// Alternating which goes first keeps warm caches fair to both.
		if i%2 == 0 {
			timed(vip, &viaService)
			timed(direct, &viaPod)
		} else {
			timed(direct, &viaPod)
			timed(vip, &viaService)
		}
	}
	median := func(d []time.Duration) time.Duration { slices.Sort(d); return d[len(d)/2] }
	s, p := median(viaService), median(viaPod)
	b.ReportMetric(float64(s.Nanoseconds()), "clusterip-ns/req")
	b.ReportMetric(float64(p.Nanoseconds()), "podip-ns/req")
	b.ReportMetric(float64(s)/float64(p), "ratio")
}
