package proxy

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/wasmkube/wasmkube/ebpf/lb"
)

// fakeDatapath records calls and keeps the map contents they leave.
type fakeDatapath struct {
	mu         sync.Mutex
	maps       map[lb.Frontend]lb.Service
	reconciles int
	calls      []string
	failNext   int // Upserts to refuse, to exercise retries
}

func newFakeDatapath() *fakeDatapath {
	return &fakeDatapath{maps: map[lb.Frontend]lb.Service{}}
}

func (d *fakeDatapath) Reconcile(want map[lb.Frontend]lb.Service) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.reconciles++
	changed := 0
	for fe := range d.maps {
		if _, ok := want[fe]; !ok {
			changed++
		}
	}
	for fe, s := range want {
		if old, ok := d.maps[fe]; !ok || !servicesEqual(old, s) {
			changed++
		}
	}
	d.maps = map[lb.Frontend]lb.Service{}
	for fe, s := range want {
		d.maps[fe] = s
	}
	return changed, nil
}

func (d *fakeDatapath) Upsert(fe lb.Frontend, s lb.Service) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.failNext > 0 {
		d.failNext--
		return fmt.Errorf("map full")
	}
	d.calls = append(d.calls, fmt.Sprintf("upsert %s:%d/%s %s", fe.Addr, fe.Port, fe.Proto, fe.Scope))
	d.maps[fe] = s
	return nil
}

func (d *fakeDatapath) Delete(fe lb.Frontend) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls = append(d.calls, fmt.Sprintf("delete %s:%d/%s %s", fe.Addr, fe.Port, fe.Proto, fe.Scope))
	delete(d.maps, fe)
	return nil
}

// takeCalls returns the Upsert/Delete calls since the last take, sorted.
func (d *fakeDatapath) takeCalls() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	c := d.calls
	d.calls = nil
	sort.Strings(c)
	return c
}

func (d *fakeDatapath) snapshot() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return render(d.maps)
}

// started runs a proxy over client and returns a channel of synced keys
// ("" for the first Reconcile) once that Reconcile is done.
func started(t *testing.T, client kubernetes.Interface, dp Datapath) <-chan string {
	t.Helper()
	synced := make(chan string, 100)
	p := New(client, dp, WithNodeName("n1"), WithNodeIPs(netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("fd00::1")),
		WithSyncHook(func(key string, _ time.Time) { synced <- key }))
	runProxy(t, p)
	waitKey(t, synced, "")
	return synced
}

func waitKey(t *testing.T, synced <-chan string, key string) {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case k := <-synced:
			if k == key {
				return
			}
		case <-timeout:
			t.Fatalf("service %q was never synced", key)
		}
	}
}

func named(name string, svc *corev1.Service, ip string) *corev1.Service {
	svc.Name, svc.Spec.ClusterIP, svc.Spec.ClusterIPs = name, ip, []string{ip}
	return svc
}

func sliceOf(svcName, name string, port int32, eps ...ep) *discoveryv1.EndpointSlice {
	s := slice(name, port, eps...)
	s.Labels[discoveryv1.LabelServiceName] = svcName
	return s
}

func TestProxyStartsWithOneReconcile(t *testing.T) {
	client := fake.NewClientset(
		named("web", service(), "10.96.0.10"),
		sliceOf("web", "web-1", 8080, ep{ip: "10.244.0.5"}),
		named("api", service(), "10.96.0.11"),
	)
	dp := newFakeDatapath()
	// A frontend left over from an earlier run, which Reconcile removes.
	dp.maps[lb.Frontend{Addr: netip.MustParseAddr("10.96.9.9"), Port: 1, Proto: lb.TCP}] = lb.Service{}
	synced := started(t, client, dp)

	want := "10.96.0.10:80/TCP socket -> [10.244.0.5:8080]\n10.96.0.11:80/TCP socket -> []"
	if got := dp.snapshot(); got != want {
		t.Errorf("after start:\n%s\nwant:\n%s", got, want)
	}
	// Touch an unrelated Service so that the queue has certainly drained
	// the start-up events before looking at the calls.
	ctx := context.Background()
	if _, err := client.CoreV1().Services("default").Create(ctx, named("late", service(), "10.96.0.12"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitKey(t, synced, "default/late")
	if got := dp.takeCalls(); fmt.Sprint(got) != "[upsert 10.96.0.12:80/TCP socket]" {
		t.Errorf("calls after start: %v, want only the new Service's upsert", got)
	}
	dp.mu.Lock()
	defer dp.mu.Unlock()
	if dp.reconciles != 1 {
		t.Errorf("%d Reconcile calls, want 1", dp.reconciles)
	}
}

func TestProxyIncremental(t *testing.T) {
	ctx := context.Background()
	np := named("web", service(func(s *corev1.Service) {
		s.Spec.Type = corev1.ServiceTypeNodePort
		s.Spec.Ports[0].NodePort = 30080
		s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
	}), "10.96.0.10")
	client := fake.NewClientset(np, sliceOf("web", "web-1", 8080, ep{ip: "10.244.0.5", node: "n1"}),
		named("other", service(), "10.96.0.11"), sliceOf("other", "other-1", 9090, ep{ip: "10.244.3.3"}))
	dp := newFakeDatapath()
	synced := started(t, client, dp)

	// A remote endpoint joins: every frontend but the Local external one
	// changes; the other Service is not touched.
	s := sliceOf("web", "web-1", 8080, ep{ip: "10.244.0.5", node: "n1"}, ep{ip: "10.244.1.5", node: "n2"})
	if _, err := client.DiscoveryV1().EndpointSlices("default").Update(ctx, s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitKey(t, synced, "default/web")
	if got, want := fmt.Sprint(dp.takeCalls()), "[upsert 10.96.0.10:80/TCP socket upsert 127.0.0.1:30080/TCP socket upsert 192.0.2.1:30080/TCP socket]"; got != want {
		t.Errorf("calls: %s\nwant:  %s", got, want)
	}

	// A failing write is retried until it lands.
	dp.mu.Lock()
	dp.failNext = 2
	dp.mu.Unlock()
	s = sliceOf("other", "other-1", 9090, ep{ip: "10.244.3.4"})
	if _, err := client.DiscoveryV1().EndpointSlices("default").Update(ctx, s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitKey(t, synced, "default/other")
	if got := fmt.Sprint(dp.takeCalls()); got != "[upsert 10.96.0.11:80/TCP socket]" {
		t.Errorf("calls after retried write: %s", got)
	}

	// Deleting the Service deletes all its frontends.
	if err := client.CoreV1().Services("default").Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitKey(t, synced, "default/web")
	if got, want := fmt.Sprint(dp.takeCalls()), "[delete 10.96.0.10:80/TCP socket delete 127.0.0.1:30080/TCP socket delete 192.0.2.1:30080/TCP external delete 192.0.2.1:30080/TCP socket]"; got != want {
		t.Errorf("calls: %s\nwant:  %s", got, want)
	}
	if got := dp.snapshot(); got != "10.96.0.11:80/TCP socket -> [10.244.3.4:9090]" {
		t.Errorf("maps left: %s", got)
	}
}

// TestProxyOwnership checks that two Services claiming one external
// address do not take it from each other: the first keeps it, and the
// second's deletion leaves it alone.
func TestProxyOwnership(t *testing.T) {
	ctx := context.Background()
	ext := func(s *corev1.Service) { s.Spec.ExternalIPs = []string{"198.51.100.7"} }
	client := fake.NewClientset(named("a", service(ext), "10.96.0.10"), sliceOf("a", "a-1", 8080, ep{ip: "10.244.0.5"}))
	dp := newFakeDatapath()
	synced := started(t, client, dp)
	if _, err := client.CoreV1().Services("default").Create(ctx, named("b", service(ext), "10.96.0.11"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitKey(t, synced, "default/b")
	if err := client.CoreV1().Services("default").Delete(ctx, "b", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitKey(t, synced, "default/b")
	want := "10.96.0.10:80/TCP socket -> [10.244.0.5:8080]\n" +
		"198.51.100.7:80/TCP external -> [10.244.0.5:8080]\n198.51.100.7:80/TCP socket -> [10.244.0.5:8080]"
	if got := dp.snapshot(); got != want {
		t.Errorf("maps:\n%s\nwant:\n%s", got, want)
	}
}

// runProxy runs p until the test ends, then checks that Run returned
// without error.
func runProxy(t testing.TB, p *Proxy) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}
