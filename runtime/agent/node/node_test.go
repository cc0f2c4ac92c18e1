package node

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os/exec"
	goruntime "runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/wasmkube/wasmkube/control/controllers/framework"
	"github.com/wasmkube/wasmkube/control/controllers/nodeipam"
	"github.com/wasmkube/wasmkube/internal/testcluster"
)

// start runs an agent until the test ends and returns it with the
// cancel function of Run's context and a channel closed when Run returns,
// after *runErr is set.
func start(t *testing.T, client kubernetes.Interface, cfg Config) (a *Agent, cancel context.CancelFunc, done <-chan struct{}, runErr *error) {
	t.Helper()
	if cfg.NodeIP == nil {
		cfg.NodeIP = net.ParseIP("192.0.2.10")
	}
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	if cfg.StatusInterval == 0 {
		cfg.StatusInterval = 100 * time.Millisecond
	}
	if cfg.LeaseDuration == 0 {
		cfg.LeaseDuration = 2 * time.Second
	}
	a, err := New(client, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	finished := make(chan struct{})
	runErr = new(error)
	go func() {
		*runErr = a.Run(ctx)
		close(finished)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-finished:
		case <-time.After(10 * time.Second):
			t.Errorf("Run did not return after its context ended")
		}
	})
	return a, cancel, finished, runErr
}

func waitRegistered(t *testing.T, a *Agent) {
	t.Helper()
	select {
	case <-a.Registered():
	case <-time.After(20 * time.Second):
		t.Fatalf("node %s not registered and ready", a.Name())
	}
}

func getNode(t *testing.T, client kubernetes.Interface, name string) *corev1.Node {
	t.Helper()
	n, err := client.CoreV1().Nodes().Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("getting node %s: %v", name, err)
	}
	return n
}

func findCondition(n *corev1.Node, typ corev1.NodeConditionType) *corev1.NodeCondition {
	for i := range n.Status.Conditions {
		if n.Status.Conditions[i].Type == typ {
			return &n.Status.Conditions[i]
		}
	}
	return nil
}

func TestRegistersNodeAsKubeletDoes(t *testing.T) {
	_, client := testcluster.Start(t)
	a, _, _, _ := start(t, client, Config{
		Name:           "edge-1",
		Labels:         map[string]string{"wasmkube.io/wasm": "true"},
		RuntimeVersion: "containerd://1.6.20",
		KubeletVersion: "v1.37.2+wasmkube",
	})
	waitRegistered(t, a)
	n := getNode(t, client, "edge-1")

	for k, v := range map[string]string{
		"kubernetes.io/hostname":  "edge-1",
		"kubernetes.io/os":        goruntime.GOOS,
		"kubernetes.io/arch":      goruntime.GOARCH,
		"beta.kubernetes.io/os":   goruntime.GOOS,
		"beta.kubernetes.io/arch": goruntime.GOARCH,
		"wasmkube.io/wasm":        "true",
	} {
		if n.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, n.Labels[k], v)
		}
	}

	for _, rl := range []struct {
		name string
		list corev1.ResourceList
	}{{"capacity", n.Status.Capacity}, {"allocatable", n.Status.Allocatable}} {
		if got := rl.list.Cpu().Value(); got != int64(goruntime.NumCPU()) {
			t.Errorf("%s cpu = %d, want %d", rl.name, got, goruntime.NumCPU())
		}
		if rl.list.Memory().Value() <= 0 {
			t.Errorf("%s memory = %v, want > 0", rl.name, rl.list.Memory())
		}
		if got := rl.list.Pods().Value(); got != 110 {
			t.Errorf("%s pods = %d, want 110", rl.name, got)
		}
		if rl.list.StorageEphemeral().Value() <= 0 {
			t.Errorf("%s ephemeral-storage = %v, want > 0", rl.name, rl.list.StorageEphemeral())
		}
	}
	if n.Status.Allocatable.Memory().Cmp(*n.Status.Capacity.Memory()) >= 0 {
		t.Errorf("allocatable memory %v should withhold the eviction threshold from capacity %v",
			n.Status.Allocatable.Memory(), n.Status.Capacity.Memory())
	}

	wantAddr := []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "192.0.2.10"}, {Type: corev1.NodeHostName, Address: "edge-1"}}
	if len(n.Status.Addresses) != 2 || n.Status.Addresses[0] != wantAddr[0] || n.Status.Addresses[1] != wantAddr[1] {
		t.Errorf("addresses = %v, want %v", n.Status.Addresses, wantAddr)
	}
	if p := n.Status.DaemonEndpoints.KubeletEndpoint.Port; p != 10250 {
		t.Errorf("kubelet port = %d, want 10250", p)
	}

	ni := n.Status.NodeInfo
	uname, err := exec.Command("uname", "-r").Output()
	if err != nil {
		t.Fatalf("uname -r: %v", err)
	}
	if ni.KernelVersion != strings.TrimSpace(string(uname)) {
		t.Errorf("kernelVersion = %q, want %q", ni.KernelVersion, strings.TrimSpace(string(uname)))
	}
	for field, v := range map[string]string{
		"machineID": ni.MachineID, "systemUUID": ni.SystemUUID, "bootID": ni.BootID, "osImage": ni.OSImage,
	} {
		if v == "" || v == "Unknown" {
			t.Errorf("nodeInfo.%s = %q, want a value", field, v)
		}
	}
	if ni.ContainerRuntimeVersion != "containerd://1.6.20" || ni.KubeletVersion != "v1.37.2+wasmkube" || ni.KubeProxyVersion != "" {
		t.Errorf("versions = %q %q %q", ni.ContainerRuntimeVersion, ni.KubeletVersion, ni.KubeProxyVersion)
	}
	if ni.OperatingSystem != goruntime.GOOS || ni.Architecture != goruntime.GOARCH {
		t.Errorf("os/arch = %s/%s", ni.OperatingSystem, ni.Architecture)
	}

	for _, want := range []struct {
		typ    corev1.NodeConditionType
		status corev1.ConditionStatus
		reason string
		msg    string
	}{
		{corev1.NodeMemoryPressure, corev1.ConditionFalse, "KubeletHasSufficientMemory", "kubelet has sufficient memory available"},
		{corev1.NodeDiskPressure, corev1.ConditionFalse, "KubeletHasNoDiskPressure", "kubelet has no disk pressure"},
		{corev1.NodePIDPressure, corev1.ConditionFalse, "KubeletHasSufficientPID", "kubelet has sufficient PID available"},
		{corev1.NodeReady, corev1.ConditionTrue, "KubeletReady", "kubelet is posting ready status"},
	} {
		c := findCondition(n, want.typ)
		if c == nil {
			t.Errorf("no %s condition", want.typ)
			continue
		}
		if c.Status != want.status || c.Reason != want.reason || c.Message != want.msg {
			t.Errorf("%s = %s %s %q, want %s %s %q", want.typ, c.Status, c.Reason, c.Message, want.status, want.reason, want.msg)
		}
		if c.LastHeartbeatTime.IsZero() || c.LastTransitionTime.IsZero() {
			t.Errorf("%s has zero timestamps: %+v", want.typ, c)
		}
	}
}

func TestLeaseIsRenewedAndOwnedByNode(t *testing.T) {
	_, client := testcluster.Start(t)
	a, _, _, _ := start(t, client, Config{Name: "edge-lease", LeaseDuration: 2 * time.Second})
	waitRegistered(t, a)
	node := getNode(t, client, "edge-lease")
	leases := client.CoordinationV1().Leases(corev1.NamespaceNodeLease)

	var first time.Time
	testcluster.Eventually(t, 10*time.Second, "lease created", func(ctx context.Context) (bool, error) {
		l, err := leases.Get(ctx, "edge-lease", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity != "edge-lease" {
			t.Fatalf("holderIdentity = %v", l.Spec.HolderIdentity)
		}
		if l.Spec.LeaseDurationSeconds == nil || *l.Spec.LeaseDurationSeconds != 2 {
			t.Fatalf("leaseDurationSeconds = %v, want 2", l.Spec.LeaseDurationSeconds)
		}
		if len(l.OwnerReferences) != 1 || l.OwnerReferences[0].Kind != "Node" ||
			l.OwnerReferences[0].Name != "edge-lease" || l.OwnerReferences[0].UID != node.UID || l.OwnerReferences[0].APIVersion != "v1" {
			t.Fatalf("ownerReferences = %+v, want the Node", l.OwnerReferences)
		}
		first = l.Spec.RenewTime.Time
		return true, nil
	})
	// Renewals come every 500ms; two must have happened within 3s.
	testcluster.Eventually(t, 3*time.Second, "lease renewed", func(ctx context.Context) (bool, error) {
		l, err := leases.Get(ctx, "edge-lease", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return l.Spec.RenewTime.Time.Sub(first) >= time.Second, nil
	})
}

func TestAdoptsExistingNode(t *testing.T) {
	_, client := testcluster.Start(t)
	ctx := context.Background()
	existing := &corev1.Node{ObjectMeta: metav1.ObjectMeta{
		Name:   "edge-old",
		Labels: map[string]string{"team": "field", "kubernetes.io/hostname": "stale", "wasmkube.io/wasm": "false"},
	}}
	existing, err := client.CoreV1().Nodes().Create(ctx, existing, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating node: %v", err)
	}
	a, _, _, _ := start(t, client, Config{Name: "edge-old", Labels: map[string]string{"wasmkube.io/wasm": "true"}})
	waitRegistered(t, a)

	n := getNode(t, client, "edge-old")
	if n.UID != existing.UID {
		t.Errorf("node was replaced: UID %s, want %s", n.UID, existing.UID)
	}
	for k, v := range map[string]string{"team": "field", "kubernetes.io/hostname": "edge-old", "wasmkube.io/wasm": "true", "kubernetes.io/os": goruntime.GOOS} {
		if n.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, n.Labels[k], v)
		}
	}
	if c := findCondition(n, corev1.NodeReady); c == nil || c.Status != corev1.ConditionTrue {
		t.Errorf("adopted node not Ready: %+v", c)
	}
	list, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("listing nodes: %v", err)
	}
	if len(list.Items) != 1 {
		t.Errorf("%d nodes, want 1", len(list.Items))
	}
}

func TestRunReturnsWhenContextEnds(t *testing.T) {
	_, client := testcluster.Start(t)
	a, cancel, done, runErr := start(t, client, Config{Name: "edge-stop"})
	waitRegistered(t, a)
	cancel()
	select {
	case <-done:
		if *runErr != nil {
			t.Errorf("Run = %v, want nil", *runErr)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run still running 5s after its context ended")
	}
}

func TestTransitionTimeMovesOnlyOnChange(t *testing.T) {
	_, client := testcluster.Start(t)
	var notReady atomic.Bool
	a, _, _, _ := start(t, client, Config{
		Name:                 "edge-flap",
		StatusReportInterval: 300 * time.Millisecond,
		Ready: func() error {
			if notReady.Load() {
				return errors.New("container runtime is down")
			}
			return nil
		},
	})
	waitRegistered(t, a)
	before := *findCondition(getNode(t, client, "edge-flap"), corev1.NodeReady)

	// An unchanged status is still reported once the report interval has
	// passed: the heartbeat moves, the transition time does not.
	testcluster.Eventually(t, 5*time.Second, "heartbeat advances", func(ctx context.Context) (bool, error) {
		c := findCondition(getNode(t, client, "edge-flap"), corev1.NodeReady)
		if !c.LastTransitionTime.Equal(&before.LastTransitionTime) {
			t.Fatalf("transition time moved from %v to %v without a change", before.LastTransitionTime, c.LastTransitionTime)
		}
		return c.LastHeartbeatTime.After(before.LastHeartbeatTime.Time), nil
	})

	time.Sleep(time.Second) // timestamps have second precision on the wire
	notReady.Store(true)
	testcluster.Eventually(t, 5*time.Second, "node NotReady", func(ctx context.Context) (bool, error) {
		c := findCondition(getNode(t, client, "edge-flap"), corev1.NodeReady)
		if c.Status != corev1.ConditionFalse {
			return false, nil
		}
		if c.Reason != "KubeletNotReady" || c.Message != "container runtime is down" {
			t.Fatalf("NotReady condition = %s %q", c.Reason, c.Message)
		}
		if !c.LastTransitionTime.After(before.LastTransitionTime.Time) {
			t.Fatalf("transition time %v did not move past %v", c.LastTransitionTime, before.LastTransitionTime)
		}
		return true, nil
	})
}

func TestWaitPodCIDR(t *testing.T) {
	_, client := testcluster.Start(t)
	testcluster.RunControllers(t, client, map[string]framework.Starter{"nodeipam": nodeipam.Starter(nodeipam.Options{})})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	// Asked before the Node exists, as the agent's sandbox setup may be.
	got := make(chan *net.IPNet, 1)
	errs := make(chan error, 1)
	go func() {
		cidr, err := WaitPodCIDR(ctx, client, "edge-ipam")
		got <- cidr
		errs <- err
	}()
	time.Sleep(200 * time.Millisecond)
	start(t, client, Config{Name: "edge-ipam"})

	cidr, err := <-got, <-errs
	if err != nil {
		t.Fatalf("WaitPodCIDR: %v", err)
	}
	p, err := netip.ParsePrefix(cidr.String())
	if err != nil {
		t.Fatalf("parsing %v: %v", cidr, err)
	}
	if p.Bits() != 24 || !netip.MustParsePrefix("10.244.0.0/16").Contains(p.Addr()) {
		t.Errorf("pod CIDR %s, want a /24 in 10.244.0.0/16", p)
	}
	if n := getNode(t, client, "edge-ipam"); n.Spec.PodCIDR != p.String() {
		t.Errorf("node podCIDR %q, WaitPodCIDR %s", n.Spec.PodCIDR, p)
	}

	// Once assigned, it is returned at once.
	again, err := WaitPodCIDR(ctx, client, "edge-ipam")
	if err != nil || again.String() != cidr.String() {
		t.Errorf("second WaitPodCIDR = %v, %v; want %v", again, err, cidr)
	}
}

func TestWaitPodCIDRHonoursContext(t *testing.T) {
	_, client := testcluster.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := WaitPodCIDR(ctx, client, "never")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitPodCIDR = %v, want deadline exceeded", err)
	}
}

func TestReregistersDeletedNode(t *testing.T) {
	_, client := testcluster.Start(t)
	a, _, _, _ := start(t, client, Config{Name: "edge-gone"})
	waitRegistered(t, a)
	old := getNode(t, client, "edge-gone")
	if err := client.CoreV1().Nodes().Delete(context.Background(), "edge-gone", metav1.DeleteOptions{}); err != nil {
		t.Fatalf("deleting node: %v", err)
	}
	testcluster.Eventually(t, 10*time.Second, "node registered again and Ready", func(ctx context.Context) (bool, error) {
		n, err := client.CoreV1().Nodes().Get(ctx, "edge-gone", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		c := findCondition(n, corev1.NodeReady)
		return n.UID != old.UID && c != nil && c.Status == corev1.ConditionTrue, nil
	})
}

func TestStatusWritesKeepOthersConditions(t *testing.T) {
	_, client := testcluster.Start(t)
	ctx := context.Background()
	n, err := client.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "edge-net"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating node: %v", err)
	}
	n.Status.Conditions = []corev1.NodeCondition{{
		Type: corev1.NodeNetworkUnavailable, Status: corev1.ConditionFalse, Reason: "RouteCreated",
		LastTransitionTime: metav1.Now(),
	}}
	if _, err := client.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("setting a foreign condition: %v", err)
	}
	a, _, _, _ := start(t, client, Config{Name: "edge-net", StatusReportInterval: 200 * time.Millisecond})
	waitRegistered(t, a)
	time.Sleep(500 * time.Millisecond) // a few more status writes
	got := getNode(t, client, "edge-net")
	if c := findCondition(got, corev1.NodeNetworkUnavailable); c == nil || c.Reason != "RouteCreated" {
		t.Errorf("foreign condition lost: %+v", got.Status.Conditions)
	}
	if len(got.Status.Conditions) != 5 {
		t.Errorf("%d conditions, want 5: %+v", len(got.Status.Conditions), got.Status.Conditions)
	}
}

func TestRefreshReportsReadyWithoutWaiting(t *testing.T) {
	_, client := testcluster.Start(t)
	var ready atomic.Bool
	a, _, _, _ := start(t, client, Config{
		Name:           "edge-refresh",
		StatusInterval: time.Hour, // only Refresh can bring the change in time
		Ready: func() error {
			if !ready.Load() {
				return errors.New("pod network is not ready")
			}
			return nil
		},
	})
	condition := func() *corev1.NodeCondition {
		n, err := client.CoreV1().Nodes().Get(context.Background(), "edge-refresh", metav1.GetOptions{})
		if err != nil {
			return nil
		}
		return findCondition(n, corev1.NodeReady)
	}
	testcluster.Eventually(t, 10*time.Second, "node registered NotReady", func(ctx context.Context) (bool, error) {
		c := condition()
		return c != nil && c.Status == corev1.ConditionFalse, nil
	})
	ready.Store(true)
	a.Refresh()
	testcluster.Eventually(t, 10*time.Second, "node Ready after Refresh", func(ctx context.Context) (bool, error) {
		c := condition()
		return c != nil && c.Status == corev1.ConditionTrue, nil
	})
}
