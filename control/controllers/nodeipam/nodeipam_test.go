package nodeipam

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/wasmkube/wasmkube/control/controllers/framework"
	"github.com/wasmkube/wasmkube/internal/testcluster"
)

func runController(t *testing.T, cs kubernetes.Interface, opts Options) {
	t.Helper()
	testcluster.RunControllers(t, cs, map[string]framework.Starter{"nodeipam": Starter(opts)})
}

func createNode(t *testing.T, cs kubernetes.Interface, name, cidr string) {
	t.Helper()
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if cidr != "" {
		n.Spec.PodCIDR, n.Spec.PodCIDRs = cidr, []string{cidr}
	}
	if _, err := cs.CoreV1().Nodes().Create(context.Background(), n, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating node %s: %v", name, err)
	}
	t.Cleanup(func() { _ = cs.CoreV1().Nodes().Delete(context.Background(), name, metav1.DeleteOptions{}) })
}

// podCIDR waits for a node's range and checks that both fields agree.
func podCIDR(t *testing.T, cs kubernetes.Interface, name string) string {
	t.Helper()
	var got string
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, 20*time.Second, true, func(ctx context.Context) (bool, error) {
		n, err := cs.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil || n.Spec.PodCIDR == "" {
			return false, nil
		}
		if len(n.Spec.PodCIDRs) != 1 || n.Spec.PodCIDRs[0] != n.Spec.PodCIDR {
			return false, fmt.Errorf("node %s podCIDR %q but podCIDRs %v", name, n.Spec.PodCIDR, n.Spec.PodCIDRs)
		}
		got = n.Spec.PodCIDR
		return true, nil
	})
	if err != nil {
		t.Fatalf("node %s: no pod CIDR: %v", name, err)
	}
	return got
}

func TestDefaultClusterCIDR(t *testing.T) {
	_, cs := testcluster.Start(t)
	runController(t, cs, Options{})
	cluster := netip.MustParsePrefix(DefaultClusterCIDR)
	seen := map[string]string{}
	for _, name := range []string{"a", "b", "c"} {
		createNode(t, cs, name, "")
	}
	for _, name := range []string{"a", "b", "c"} {
		cidr := podCIDR(t, cs, name)
		p, err := netip.ParsePrefix(cidr)
		if err != nil || p.Bits() != 24 || !cluster.Contains(p.Addr()) || p.Masked() != p {
			t.Errorf("node %s got %q, want a /24 inside %s", name, cidr, cluster)
		}
		if other, dup := seen[cidr]; dup {
			t.Errorf("nodes %s and %s share %s", name, other, cidr)
		}
		seen[cidr] = name
	}
}

func TestExhaustionAndReuseAfterDelete(t *testing.T) {
	_, cs := testcluster.Start(t)
	ctx := context.Background()
	// Four ranges; one is held before the controller starts, so the
	// controller must learn it from the existing Node.
	createNode(t, cs, "pre", "10.100.1.0/24")
	runController(t, cs, Options{ClusterCIDR: "10.100.0.0/22"})

	got := map[string]string{"pre": "10.100.1.0/24"}
	for _, name := range []string{"n1", "n2", "n3"} {
		createNode(t, cs, name, "")
		got[name] = podCIDR(t, cs, name)
	}
	seen := map[string]bool{}
	for name, cidr := range got {
		if seen[cidr] {
			t.Fatalf("range %s handed out twice: %v", cidr, got)
		}
		seen[cidr] = true
		if !netip.MustParsePrefix("10.100.0.0/22").Contains(netip.MustParsePrefix(cidr).Addr()) {
			t.Errorf("node %s got %s outside the cluster CIDR", name, cidr)
		}
	}

	// The range is full: n4 waits, with an event saying why.
	createNode(t, cs, "n4", "")
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 20*time.Second, true, func(ctx context.Context) (bool, error) {
		evs, err := cs.CoreV1().Events("").List(ctx, metav1.ListOptions{
			FieldSelector: fields.Set{"involvedObject.name": "n4", "reason": "CIDRNotAvailable"}.String(),
		})
		if err != nil {
			return false, nil
		}
		for _, e := range evs.Items {
			if e.InvolvedObject.Name == "n4" && e.Reason == "CIDRNotAvailable" {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("no CIDRNotAvailable event for n4: %v", err)
	}
	n4, err := cs.CoreV1().Nodes().Get(ctx, "n4", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n4.Spec.PodCIDR != "" {
		t.Fatalf("n4 got %s from a full range", n4.Spec.PodCIDR)
	}

	// Deleting n2 frees its range, and only then does n4 get it.
	if err := cs.CoreV1().Nodes().Delete(ctx, "n2", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if cidr := podCIDR(t, cs, "n4"); cidr != got["n2"] {
		t.Errorf("n4 got %s, want n2's freed %s", cidr, got["n2"])
	}
}

func TestAllocatorOrderAndIPv6(t *testing.T) {
	a, err := newAllocator(netip.MustParsePrefix("10.0.0.0/23"), 24)
	if err != nil {
		t.Fatal(err)
	}
	first, _ := a.allocate("x")
	second, _ := a.allocate("y")
	if first.String() != "10.0.0.0/24" || second.String() != "10.0.1.0/24" {
		t.Fatalf("got %s and %s", first, second)
	}
	if _, err := a.allocate("z"); err == nil {
		t.Fatal("allocated from a full range")
	}
	if again, _ := a.allocate("x"); again != first {
		t.Errorf("x asked again and got %s, want its %s", again, first)
	}
	if !a.release("x") || a.release("x") {
		t.Error("release should free once")
	}
	if err := a.occupy("w", "10.0.1.0/24"); err == nil {
		t.Error("occupy of y's range by w succeeded")
	}
	six, err := newAllocator(netip.MustParsePrefix("fd00:10::/56"), 64)
	if err != nil {
		t.Fatal(err)
	}
	six.next = 255
	p, err := six.allocate("v6")
	if err != nil || p.String() != "fd00:10:0:ff::/64" || six.index(p) != 255 {
		t.Errorf("IPv6 range 255 = %s (index %d, err %v)", p, six.index(p), err)
	}
	if _, err := newAllocator(netip.MustParsePrefix("10.0.0.0/8"), 28); err == nil {
		t.Error("a 2^20-range allocator was accepted")
	}
}

func TestOptionsValidate(t *testing.T) {
	for _, tc := range []struct {
		opts Options
		ok   bool
	}{
		{Options{}, true},
		{Options{ClusterCIDR: "10.244.4.0/22", NodeMaskSize: 22}, true},
		{Options{ClusterCIDR: "10.244.0.0/16", NodeMaskSize: 23}, true},
		{Options{ClusterCIDR: "fd00::/48"}, true},
		{Options{ClusterCIDR: "10.244.4.0/22", NodeMaskSize: 21}, false}, // shorter than the cluster's
		{Options{ClusterCIDR: "10.244.0.0/16", NodeMaskSize: 33}, false},
		{Options{ClusterCIDR: "10.0.0.0/8", NodeMaskSize: 25}, false}, // 2^17 ranges
		{Options{ClusterCIDR: "10.244.0.0"}, false},
	} {
		err := tc.opts.Validate()
		if (err == nil) != tc.ok {
			t.Errorf("%+v: Validate() = %v, want ok %v", tc.opts, err, tc.ok)
		}
	}
	a, err := Options{ClusterCIDR: "10.244.4.0/22", NodeMaskSize: 22}.allocator()
	if err != nil {
		t.Fatal(err)
	}
	if p, err := a.allocate("n"); err != nil || p.String() != "10.244.4.0/22" {
		t.Errorf("the one /22 of a /22 cluster CIDR = %s, %v", p, err)
	}
}
