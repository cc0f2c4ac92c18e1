package server

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"

	"github.com/wasmkube/wasmkube/internal/e2e"
)

// These benchmarks produce the figures in docs/benchmarks.md. Each runs a
// fixed workload per iteration and reports latencies as custom metrics;
// ns/op is the time of one whole workload. Client and server share the
// machine, as they do on an edge node.

const (
	createClients = 50
	createCount   = 5000
	listPods      = 10000
	listPageSize  = 500
	listRounds    = 10
	watchers      = 100
	watchWrites   = 200
	idleWait      = 30 * time.Second
)

// startBenchServer is startServer for benchmarks: a real control plane on
// a free loopback port, stopped when the benchmark ends.
func startBenchServer(b *testing.B) *Server {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := Start(ctx, Options{DataDir: b.TempDir(), SecurePort: 0})
	if err != nil {
		b.Fatalf("starting server: %v", err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			b.Errorf("shutdown: %v", err)
		}
	})
	return s
}

// newClients returns n clientsets, each with its own transport and so its
// own TLS connection: client-go would otherwise share one cached transport
// between identical configs, and the benchmark would measure one client.
func newClients(b *testing.B, s *Server, n int) []kubernetes.Interface {
	b.Helper()
	clients := make([]kubernetes.Interface, n)
	for i := range clients {
		cfg := s.LoopbackConfig()
		// A distinct dial function makes the transport uncacheable.
		cfg.Dial = (&net.Dialer{Timeout: 10 * time.Second}).DialContext
		cs, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			b.Fatal(err)
		}
		clients[i] = cs
	}
	return clients
}

func benchPod(name string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": "bench"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "web", Image: "tomcat:8.5-jre8-alpine",
			Ports: []corev1.ContainerPort{{ContainerPort: 8080}},
		}}},
	}
}

// createConcurrently runs create(client, i) for i in [0, count) spread over
// the clients, and returns each call's latency. With rate 0 every client
// sends its next request as soon as the last one returns (a closed loop:
// latency then includes queueing at saturation); with a rate, request i is
// due at start+i/rate and its latency runs from that due time, so a stall
// shows in the figures instead of silently slowing the senders.
func createConcurrently(b *testing.B, clients []kubernetes.Interface, count int, rate float64, create func(kubernetes.Interface, int) error) []time.Duration {
	b.Helper()
	var next atomic.Int64
	latencies := make([][]time.Duration, len(clients))
	errs := make(chan error, len(clients))
	var wg sync.WaitGroup
	start := time.Now()
	for w, cs := range clients {
		wg.Go(func() {
			for k := 0; ; k++ {
				var i int
				if rate > 0 {
					i = w + k*len(clients)
				} else {
					i = int(next.Add(1)) - 1
				}
				if i >= count {
					return
				}
				from := time.Now()
				if rate > 0 {
					from = start.Add(time.Duration(float64(i) / rate * float64(time.Second)))
					time.Sleep(time.Until(from))
				}
				if err := create(cs, i); err != nil {
					errs <- err
					return
				}
				latencies[w] = append(latencies[w], time.Since(from))
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatalf("create: %v", err)
	}
	return slices.Concat(latencies...)
}

// percentile is the nearest-rank percentile of ds, which it sorts.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	rank := int(p/100*float64(len(ds))+0.5) - 1
	return ds[min(max(rank, 0), len(ds)-1)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func reportLatencies(b *testing.B, prefix string, ds []time.Duration) {
	b.ReportMetric(ms(percentile(ds, 50)), prefix+"p50-ms")
	b.ReportMetric(ms(percentile(ds, 99)), prefix+"p99-ms")
}

// BenchmarkCreate: 5,000 single-object creates from 50 concurrent clients,
// as fast as they go (closed) and paced at 500 creates/s in all (paced),
// plus one client alone for the unloaded latency.
func BenchmarkCreate(b *testing.B) {
	kinds := []struct {
		name   string
		create func(cs kubernetes.Interface, name string) error
	}{
		{"configmap", func(cs kubernetes.Interface, name string) error {
			cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}, Data: map[string]string{"key": "value"}}
			_, err := cs.CoreV1().ConfigMaps("default").Create(context.Background(), cm, metav1.CreateOptions{})
			return err
		}},
		{"pod", func(cs kubernetes.Interface, name string) error {
			_, err := cs.CoreV1().Pods("default").Create(context.Background(), benchPod(name), metav1.CreateOptions{})
			return err
		}},
	}
	loads := []struct {
		name           string
		clients, count int
		rate           float64
	}{
		{"clients=50/closed", createClients, createCount, 0},
		{"clients=50/paced=500", createClients, createCount, 500},
		{"clients=1", 1, createCount / 5, 0},
	}
	for _, kind := range kinds {
		for _, load := range loads {
			b.Run(kind.name+"/"+load.name, func(b *testing.B) {
				s := startBenchServer(b)
				clients := newClients(b, s, load.clients)
				var all []time.Duration
				b.ResetTimer()
				for iter := range b.N {
					start := time.Now()
					ds := createConcurrently(b, clients, load.count, load.rate, func(cs kubernetes.Interface, i int) error {
						return kind.create(cs, fmt.Sprintf("bench-%d-%d", iter, i))
					})
					b.ReportMetric(float64(load.count)/time.Since(start).Seconds(), "creates/s")
					all = append(all, ds...)
				}
				reportLatencies(b, "", all)
			})
		}
	}
}

// BenchmarkList: 10,000 pods listed whole, and paged 500 at a time.
func BenchmarkList(b *testing.B) {
	s := startBenchServer(b)
	cs := newClients(b, s, createClients)
	createConcurrently(b, cs, listPods, 0, func(c kubernetes.Interface, i int) error {
		_, err := c.CoreV1().Pods("default").Create(context.Background(), benchPod(fmt.Sprintf("pod-%05d", i)), metav1.CreateOptions{})
		return err
	})
	pods := cs[0].CoreV1().Pods("default")
	ctx := context.Background()
	var full, paged, pages []time.Duration
	b.ResetTimer()
	for range b.N {
		for range listRounds {
			start := time.Now()
			list, err := pods.List(ctx, metav1.ListOptions{})
			if err != nil || len(list.Items) != listPods {
				b.Fatalf("full list: %v, %d items", err, len(list.Items))
			}
			full = append(full, time.Since(start))

			start, n, cont := time.Now(), 0, ""
			for {
				pageStart := time.Now()
				page, err := pods.List(ctx, metav1.ListOptions{Limit: listPageSize, Continue: cont})
				if err != nil {
					b.Fatalf("page: %v", err)
				}
				pages = append(pages, time.Since(pageStart))
				n += len(page.Items)
				if cont = page.Continue; cont == "" {
					break
				}
			}
			if n != listPods {
				b.Fatalf("paged list saw %d pods, want %d", n, listPods)
			}
			paged = append(paged, time.Since(start))
		}
	}
	reportLatencies(b, "full-", full)
	reportLatencies(b, "paged-", paged)
	reportLatencies(b, "page-", pages)
}

// BenchmarkWatchFanout: 100 watchers, each its own client, receive every
// one of 200 sequential creates; latency runs from the create returning to
// the watcher decoding the event. An event can arrive before the writer has
// read its response; such deliveries count as 0 and are reported as early-%.
// The sent- figures run from the moment the create was sent instead.
func BenchmarkWatchFanout(b *testing.B) {
	s := startBenchServer(b)
	clients := newClients(b, s, watchers+1)
	writer, ctx := clients[watchers].CoreV1().ConfigMaps("default"), context.Background()
	var all, fromSent []time.Duration
	early := 0
	b.ResetTimer()
	for iter := range b.N {
		list, err := writer.List(ctx, metav1.ListOptions{Limit: 1})
		if err != nil {
			b.Fatal(err)
		}
		// Watching from the list's version means no event is missed however
		// late a watch registers.
		received := make([][]time.Time, watchers)
		var wg sync.WaitGroup
		for w := range watchers {
			wt, err := clients[w].CoreV1().ConfigMaps("default").Watch(ctx, metav1.ListOptions{ResourceVersion: list.ResourceVersion})
			if err != nil {
				b.Fatalf("watch %d: %v", w, err)
			}
			received[w] = make([]time.Time, watchWrites)
			wg.Go(func() {
				defer wt.Stop()
				prefix := fmt.Sprintf("fan-%d-", iter)
				for seen := 0; seen < watchWrites; {
					ev, ok := <-wt.ResultChan()
					if !ok {
						return
					}
					at := time.Now()
					cm, isCM := ev.Object.(*corev1.ConfigMap)
					if ev.Type != watch.Added || !isCM || !strings.HasPrefix(cm.Name, prefix) {
						continue
					}
					i, _ := strconv.Atoi(strings.TrimPrefix(cm.Name, prefix))
					received[w][i] = at
					seen++
				}
			})
		}
		sent, returned := make([]time.Time, watchWrites), make([]time.Time, watchWrites)
		for i := range watchWrites {
			cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("fan-%d-%d", iter, i)}}
			sent[i] = time.Now()
			if _, err := writer.Create(ctx, cm, metav1.CreateOptions{}); err != nil {
				b.Fatal(err)
			}
			returned[i] = time.Now()
		}
		if !waitTimeout(&wg, time.Minute) {
			b.Fatal("watchers did not receive every event within a minute")
		}
		for w := range watchers {
			for i, at := range received[w] {
				if at.IsZero() {
					b.Fatalf("watcher %d missed event %d", w, i)
				}
				d := at.Sub(returned[i])
				if d < 0 {
					early++
				}
				all = append(all, max(d, 0))
				fromSent = append(fromSent, at.Sub(sent[i]))
			}
		}
	}
	reportLatencies(b, "", all)
	reportLatencies(b, "sent-", fromSent)
	b.ReportMetric(100*float64(early)/float64(len(all)), "early-%")
	b.ReportMetric(float64(len(all)), "deliveries")
}

func waitTimeout(wg *sync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}

// BenchmarkIdleMemory runs the real binary, as a node would, and reads its
// resident memory after 30 s idle. The server pages out its startup pages
// once serving, so an earlier reading would overstate the steady state.
// probe=http is the server alone; probe=kubectl waits for it with `wasmkube
// kubectl`, whose process shares the binary's pages while the server trims
// them, and shows what that sharing keeps resident.
func BenchmarkIdleMemory(b *testing.B) {
	for _, probe := range []string{"http", "kubectl"} {
		b.Run("probe="+probe, func(b *testing.B) {
			srv := e2e.StartServer(b, e2e.ServerOptions{ProbeHTTP: probe == "http"})
			b.ResetTimer()
			for range b.N {
				time.Sleep(idleWait)
				status, err := e2e.ProcStatus(srv.PID())
				if err != nil {
					b.Fatal(err)
				}
				for _, field := range []string{"VmRSS", "RssAnon", "RssFile"} {
					kib, ok := status[field]
					if !ok {
						b.Fatalf("/proc/%d/status has no %s", srv.PID(), field)
					}
					b.ReportMetric(float64(kib)/1024, field+"-MiB")
				}
			}
		})
	}
}
