package servicelb

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"

	"github.com/wasmkube/wasmkube/control/controllers/framework"
	"github.com/wasmkube/wasmkube/internal/testcluster"
)

func TestParsePool(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{in: "192.0.2.0/28", want: "192.0.2.1-192.0.2.14"},
		{in: "192.0.2.5/28", want: "192.0.2.1-192.0.2.14"},
		{in: "192.0.2.8/31", want: "192.0.2.8-192.0.2.9"},
		{in: "192.0.2.7/32", want: "192.0.2.7-192.0.2.7"},
		{in: "192.0.2.10-192.0.2.20", want: "192.0.2.10-192.0.2.20"},
		{in: " 192.0.2.10 - 192.0.2.10 ", want: "192.0.2.10-192.0.2.10"},
		{in: "192.0.2.20-192.0.2.10", err: "end before start"},
		{in: "192.0.2.1-2001:db8::1", err: "mixed families"},
		{in: "192.0.2.0/33", err: "invalid CIDR or range"},
		{in: "nonsense", err: "invalid CIDR or range"},
	} {
		p, err := ParsePool(tc.in)
		switch {
		case tc.err != "":
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParsePool(%q) = %v, %v; want error with %q", tc.in, p, err, tc.err)
			}
		case err != nil || p.String() != tc.want:
			t.Errorf("ParsePool(%q) = %v, %v; want %s", tc.in, p, err, tc.want)
		}
	}
	if p, err := ParsePool(""); p != nil || err != nil {
		t.Errorf("empty pool = %v, %v", p, err)
	}
	p, _ := ParsePool("192.0.2.0/30")
	for ip, in := range map[string]bool{"192.0.2.0": false, "192.0.2.1": true, "192.0.2.2": true, "192.0.2.3": false, "2001:db8::1": false} {
		if p.Contains(netip.MustParseAddr(ip)) != in {
			t.Errorf("Contains(%s) != %v", ip, in)
		}
	}
}

func lbService(name string, mut ...func(*corev1.Service)) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, CreationTimestamp: metav1.Now()},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer,
			Ports: []corev1.ServicePort{{Port: 80, Protocol: corev1.ProtocolTCP}}},
	}
	for _, m := range mut {
		m(s)
	}
	return s
}

func withIngress(ip string) func(*corev1.Service) {
	return func(s *corev1.Service) {
		s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: ip, IPMode: ptr.To(corev1.LoadBalancerIPModeVIP)}}
	}
}

func ingressOf(ctx context.Context, cs kubernetes.Interface, name string) (string, error) {
	s, err := cs.CoreV1().Services("default").Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return "", err
	}
	out := ""
	for _, ing := range s.Status.LoadBalancer.Ingress {
		out += fmt.Sprintf("%s/%s ", ing.IP, ptr.Deref(ing.IPMode, "-"))
	}
	return out, nil
}

func waitIngress(t *testing.T, cs kubernetes.Interface, name, want string) {
	t.Helper()
	testcluster.Eventually(t, 30*time.Second, name+" ingress "+want, func(ctx context.Context) (bool, error) {
		got, err := ingressOf(ctx, cs, name)
		if err != nil || got != want {
			return false, fmt.Errorf("ingress %q, want %q (err %v)", got, want, err)
		}
		return true, nil
	})
}

// TestAllocation drives the controller over a fake clientset through a
// pool of two addresses: rebuild from status, requested address, the
// lowest free one, exhaustion, release on delete and on a type change.
func TestAllocation(t *testing.T) {
	ctx := context.Background()
	cs := fake.NewClientset(
		lbService("old", withIngress("192.0.2.2")),
		// A duplicate claim of .2, younger: it must be moved.
		lbService("dup", withIngress("192.0.2.2"), func(s *corev1.Service) {
			s.CreationTimestamp = metav1.NewTime(time.Now().Add(time.Hour))
		}),
		lbService("other-class", func(s *corev1.Service) { s.Spec.LoadBalancerClass = ptr.To("example.com/lb") }),
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "plain"}, Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP}},
	)
	testcluster.RunControllers(t, cs, map[string]framework.Starter{"servicelb": Starter(Options{Pool: "192.0.2.0/30"})})

	waitIngress(t, cs, "old", "192.0.2.2/VIP ")
	waitIngress(t, cs, "dup", "192.0.2.1/VIP ")
	for _, name := range []string{"other-class", "plain"} {
		if got, _ := ingressOf(ctx, cs, name); got != "" {
			t.Errorf("%s got ingress %q", name, got)
		}
	}

	// Exhausted: the new Service stays pending with a warning.
	if _, err := cs.CoreV1().Services("default").Create(ctx, lbService("late", func(s *corev1.Service) { s.Spec.LoadBalancerIP = "192.0.2.2" }), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	testcluster.Eventually(t, 30*time.Second, "AllocationFailed event", func(ctx context.Context) (bool, error) {
		evs, err := cs.CoreV1().Events("default").List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		for _, e := range evs.Items {
			if e.InvolvedObject.Name == "late" && e.Reason == "AllocationFailed" && e.Type == corev1.EventTypeWarning {
				return true, nil
			}
		}
		return false, fmt.Errorf("%d events, none AllocationFailed for late", len(evs.Items))
	})
	if got, _ := ingressOf(ctx, cs, "late"); got != "" {
		t.Errorf("late got %q from an exhausted pool", got)
	}

	// Deleting old frees .2, which late asked for by spec.loadBalancerIP.
	if err := cs.CoreV1().Services("default").Delete(ctx, "old", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitIngress(t, cs, "late", "192.0.2.2/VIP ")

	// dup stops being a LoadBalancer: status cleared, .1 free again.
	dup, err := cs.CoreV1().Services("default").Get(ctx, "dup", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dup.Spec.Type = corev1.ServiceTypeClusterIP
	if _, err := cs.CoreV1().Services("default").Update(ctx, dup, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitIngress(t, cs, "dup", "")
	if _, err := cs.CoreV1().Services("default").Create(ctx, lbService("again"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitIngress(t, cs, "again", "192.0.2.1/VIP ")
}

// TestNoPool checks that without a pool LoadBalancer Services stay pending.
func TestNoPool(t *testing.T) {
	cs := fake.NewClientset(lbService("web"))
	cc := framework.NewContext(cs, 0)
	run, err := Starter(Options{})(cc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := run(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := ingressOf(context.Background(), cs, "web"); got != "" {
		t.Errorf("ingress %q with no pool", got)
	}
	if _, err := Starter(Options{Pool: "bogus"})(cc); err == nil {
		t.Error("a bad pool was accepted")
	}
}
