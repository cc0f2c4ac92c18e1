package e2e

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/wasmkube/wasmkube/ebpf/lb"
	"github.com/wasmkube/wasmkube/runtime/agent"
	"github.com/wasmkube/wasmkube/sandbox/network/networktest"
)

const (
	// NodeReadyTimeout bounds `wasmkube up` from start to a Ready Node:
	// the control plane, containerd, registration and the pod network.
	NodeReadyTimeout = 60 * time.Second
	// NodeStopTimeout is how long `up` may take to exit after SIGTERM; it
	// stops its containerd as well.
	NodeStopTimeout = 30 * time.Second
	// PodsGoneTimeout bounds the deletion of every pod when a node is torn
	// down, grace periods included.
	PodsGoneTimeout = 90 * time.Second
	// ImportTimeout bounds one `wasmkube image import`.
	ImportTimeout = 60 * time.Second
)

// NodeOptions configure StartNode. Every zero field gets a value unique to
// the test, so that nodes of concurrent tests and packages never share a
// name, a bridge or an address, and never touch the machine's own.
type NodeOptions struct {
	// DataDir is a new temporary directory when empty.
	DataDir string
	// Name is --node-name; "e2e-<random>" when empty.
	Name string
	// ClusterCIDR is --cluster-cidr; a 10.244.x.0/24 that no host route
	// overlaps when empty.
	ClusterCIDR string
	// Bridge is --bridge-name; "wkt<random>" when empty.
	Bridge string
	// ServiceCIDR is --service-cluster-ip-range; a 10.96-111.x.0/24 when
	// empty, so that concurrent nodes' Service addresses (programmed in
	// machine-wide socket hooks) never overlap.
	ServiceCIDR string
	// Args are extra flags for `wasmkube up`.
	Args []string
}

// Node is a running `wasmkube up`: control plane and node agent in one
// process, with its own containerd, and the means to reach both.
type Node struct {
	*Server
	Name        string
	Bridge      string
	ClusterCIDR string
	ServiceCIDR string
	Client      kubernetes.Interface

	pods *podTracker
}

// StartNode runs `wasmkube up` on loopback and returns once its Node is
// Ready and `up` has said so. When the test ends it deletes every pod,
// waits until the agent has finalized them all, stops the process (which
// must exit 0 on SIGTERM) and fails the test for anything a pod left on the
// machine (processes, mounts, netns pins, cgroups, veths, IP claims),
// removing it as well. The bridge may remain after a clean shutdown, as
// cni0 does upstream; it is deleted without failing.
func StartNode(t testing.TB, opts NodeOptions) *Node {
	t.Helper()
	bin := Binary(t)
	if opts.DataDir == "" {
		opts.DataDir = t.TempDir()
	}
	nodeIdentity(t, &opts.Name, &opts.ClusterCIDR, &opts.Bridge)
	if opts.ServiceCIDR == "" {
		opts.ServiceCIDR = freeServiceCIDR(t)
	}
	n := &Node{
		Server:      newServer(t, bin, opts.DataDir),
		Name:        opts.Name,
		Bridge:      opts.Bridge,
		ClusterCIDR: opts.ClusterCIDR,
		ServiceCIDR: opts.ServiceCIDR,
	}
	args := append([]string{"up", "--data-dir", opts.DataDir,
		"--bind-address", "127.0.0.1", "--secure-port", "0",
		"--cluster-cidr", opts.ClusterCIDR, "--service-cluster-ip-range", opts.ServiceCIDR, "--bridge-name", opts.Bridge,
		"--node-name", opts.Name, "--kubelet-port", "0"}, opts.Args...)
	n.Process = StartProcess(t, "up", bin, nil, args...)
	n.StopTimeout = NodeStopTimeout
	// Registered after StartProcess's cleanups, so it runs before them:
	// the pods go while the agent still runs, and the log printed on
	// failure holds the whole shutdown.
	t.Cleanup(func() { n.shutdown(t) })

	n.waitReady(t, false)
	client, err := kubernetes.NewForConfig(n.RESTConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	n.Client = client
	n.pods = trackPods(client, n.Name)
	n.waitNodeReady(t)
	return n
}

// waitNodeReady waits for the Node's Ready condition, then for the line
// `up` prints about it.
func (n *Node) waitNodeReady(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(NodeReadyTimeout)
	last := "no Node object yet"
	for {
		if n.Exited() {
			t.Fatalf("up exited before node %s was Ready: %v\n%s", n.Name, n.err, tail(n.LogPath, 8<<10))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		node, err := n.Client.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
		cancel()
		switch {
		case err != nil:
			last = err.Error()
		default:
			last = fmt.Sprintf("conditions %s", conditionsString(node.Status.Conditions))
			if nodeReady(node) {
				n.waitLogLine(t, fmt.Sprintf("node %s is Ready", n.Name), deadline)
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %s not Ready within %s: %s\nup output (tail):\n%s", n.Name, NodeReadyTimeout, last, tail(n.LogPath, 8<<10))
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// waitLogLine waits until a line of the process log contains text.
func (n *Node) waitLogLine(t testing.TB, text string, deadline time.Time) {
	t.Helper()
	if d := time.Now().Add(10 * time.Second); d.After(deadline) {
		deadline = d
	}
	for {
		b, err := os.ReadFile(n.LogPath)
		if err != nil {
			t.Fatal(err)
		}
		if slices.ContainsFunc(strings.Split(string(b), "\n"), func(l string) bool { return strings.Contains(l, text) }) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("up printed no line with %q once the Node was Ready\nup output (tail):\n%s", text, tail(n.LogPath, 8<<10))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// nodeIdentity picks a node's name, pod CIDR and bridge where they are
// not given, and fails if the bridge exists already.
func nodeIdentity(t testing.TB, name, clusterCIDR, bridge *string) {
	t.Helper()
	if *name == "" {
		*name = "e2e-" + networktest.RandHex(t, 4)
	}
	if *clusterCIDR == "" {
		*clusterCIDR = networktest.FreeSubnet(t)
	}
	if *bridge == "" {
		*bridge = "wkt" + networktest.RandHex(t, 3)
	}
	if _, err := net.InterfaceByName(*bridge); err == nil {
		t.Fatalf("bridge %s already exists: a node must own its bridge", *bridge)
	}
}

// freeServiceCIDR picks a Service range for one test node.
func freeServiceCIDR(t testing.TB) string {
	b, err := strconv.ParseUint(networktest.RandHex(t, 2), 16, 16)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("10.%d.%d.0/24", 96+(b>>8)%16, b&0xff)
}

// DNSServiceIP is the cluster DNS address of the node's Service range (its
// .10), where the kube-dns Service answers.
func (n *Node) DNSServiceIP(t testing.TB) string { return dnsServiceIP(t, n.ServiceCIDR) }

func dnsServiceIP(t testing.TB, serviceCIDR string) string {
	p, err := netip.ParsePrefix(serviceCIDR)
	if err != nil {
		t.Fatalf("service range %q: %v", serviceCIDR, err)
	}
	a := p.Masked().Addr().As4()
	a[3] += 10
	return netip.AddrFrom4(a).String()
}

func nodeReady(node *corev1.Node) bool {
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func conditionsString(cs []corev1.NodeCondition) string {
	parts := make([]string, 0, len(cs))
	for _, c := range cs {
		parts = append(parts, fmt.Sprintf("%s=%s (%s: %s)", c.Type, c.Status, c.Reason, c.Message))
	}
	return "[" + strings.Join(parts, "; ") + "]"
}

// ContainerdSocket is the socket of the node's own containerd.
func (n *Node) ContainerdSocket() string {
	return filepath.Join(n.DataDir, "containerd", "containerd.sock")
}

// ImportImage imports an image archive into the node's image store with
// `wasmkube image import`.
func (n *Node) ImportImage(t testing.TB, archive string) {
	t.Helper()
	importImage(t, n.Bin, n.DataDir, archive)
}

// importImage imports an archive into the image store of the containerd
// under dataDir.
func importImage(t testing.TB, bin, dataDir, archive string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), ImportTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "image", "import", "--data-dir", dataDir, archive)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("wasmkube image import %s: %v\n%s", archive, err, out)
	}
}

// NetnsPin is where the agent pins the network namespace of pod uid.
func (n *Node) NetnsPin(uid types.UID) string {
	return filepath.Join(n.DataDir, "netns", string(uid))
}

// PodLeftovers lists what pod uid still holds on the machine: processes,
// mounts, its netns pin, cgroups, its host veth and its IP claim. Once the
// pod object is gone the list must be empty.
func (n *Node) PodLeftovers(uid types.UID) []string {
	var out []string
	for _, l := range n.leftovers([]types.UID{uid}, false) {
		out = append(out, l.what)
	}
	return out
}

// shutdown is StartNode's cleanup.
func (n *Node) shutdown(t testing.TB) {
	t.Helper()
	if n.Client != nil && !n.Exited() {
		n.deleteAllPods(t)
	}
	n.Stop(t)
	var uids []types.UID
	if n.pods != nil {
		n.pods.stop()
		uids = n.pods.uids()
	}
	n.checkStopped(t, uids)
}

// checkStopped is the check after a node stopped: nothing of the pods
// uids is left on the machine (what is, is reported and removed), and the
// node's bridge is deleted.
func (n *Node) checkStopped(t testing.TB, uids []types.UID) {
	t.Helper()
	for _, l := range n.settledLeftovers(t, uids) {
		t.Errorf("left behind after the node stopped: %s", l.what)
		if l.clean != nil {
			if err := l.clean(); err != nil {
				t.Errorf("removing it: %v", err)
			}
		}
	}
	// Pinned BPF maps and links outlive the agent by design (Service
	// traffic survives restarts), as the bridge does: removed, not failed.
	pins := filepath.Join(agent.DefaultBPFDir, n.Name)
	if _, err := os.Stat(pins); err == nil {
		if err := lb.Remove(pins); err != nil {
			t.Errorf("removing the node's BPF pins %s: %v", pins, err)
		}
	}
	if deleted, err := deleteBridge(n.Bridge); err != nil {
		t.Errorf("deleting bridge %s: %v", n.Bridge, err)
	} else if deleted {
		t.Logf("bridge %s remained after the node stopped (allowed); deleted it", n.Bridge)
	}
}

// leftoverSettle is how long a node's leftovers get to go by themselves
// after it stopped: a containerd shim told to shut down exits after it
// answered, and on a loaded machine that can take a moment.
const leftoverSettle = 5 * time.Second

// settledLeftovers is leftovers(uids, true) once it is empty, or what is
// still there after leftoverSettle. What went away meanwhile is logged.
func (n *Node) settledLeftovers(t testing.TB, uids []types.UID) []leftover {
	start := time.Now()
	first := n.leftovers(uids, true)
	left := first
	for len(left) > 0 && time.Since(start) < leftoverSettle {
		time.Sleep(100 * time.Millisecond)
		left = n.leftovers(uids, true)
	}
	if len(first) > 0 && len(left) == 0 {
		for _, l := range first {
			t.Logf("gone within %s of the node's stop: %s", time.Since(start).Round(time.Millisecond), l.what)
		}
	}
	return left
}

// workloadKinds are deleted before the pods, so that no controller makes
// new ones while the node is torn down.
const workloadKinds = "deployments,replicasets,statefulsets,daemonsets,jobs,cronjobs"

// deleteAllPods deletes every workload and pod in every namespace and
// waits until the agent has finalized the last pod.
func (n *Node) deleteAllPods(t testing.TB) {
	t.Helper()
	for _, args := range [][]string{
		{"delete", workloadKinds, "--all", "--all-namespaces", "--wait=true"},
		{"delete", "pods", "--all", "--all-namespaces", "--wait=false"},
	} {
		if r := n.Kubectl(t, args...); r.ExitCode != 0 {
			t.Errorf("kubectl %s: %s", strings.Join(args, " "), r)
		}
	}
	deadline := time.Now().Add(PodsGoneTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		list, err := n.Client.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
		cancel()
		if err == nil && len(list.Items) == 0 {
			return
		}
		if time.Now().After(deadline) {
			if err != nil {
				t.Errorf("listing pods while waiting for them to go: %v", err)
				return
			}
			var left []string
			for _, p := range list.Items {
				left = append(left, fmt.Sprintf("%s/%s (phase %s, deletionTimestamp %v)", p.Namespace, p.Name, p.Status.Phase, p.DeletionTimestamp))
			}
			t.Errorf("pods not finalized by the agent within %s of deleting them: %s", PodsGoneTimeout, strings.Join(left, ", "))
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// podTracker remembers the UID of every pod bound to the node, so that the
// cgroups and veths of pods that are gone can still be looked for.
type podTracker struct {
	mu     sync.Mutex
	seen   map[types.UID]bool
	stopCh chan struct{}
	once   sync.Once
}

func trackPods(client kubernetes.Interface, nodeName string) *podTracker {
	pt := &podTracker{seen: map[types.UID]bool{}, stopCh: make(chan struct{})}
	lw := cache.NewListWatchFromClient(client.CoreV1().RESTClient(), "pods", metav1.NamespaceAll, fields.Everything())
	inf := cache.NewSharedIndexInformer(lw, &corev1.Pod{}, 0, cache.Indexers{})
	record := func(obj any) {
		if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = d.Obj
		}
		if p, ok := obj.(*corev1.Pod); ok && p.Spec.NodeName == nodeName {
			pt.mu.Lock()
			pt.seen[p.UID] = true
			pt.mu.Unlock()
		}
	}
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    record,
		UpdateFunc: func(_, obj any) { record(obj) },
		DeleteFunc: record,
	})
	go inf.Run(pt.stopCh)
	return pt
}

func (pt *podTracker) stop() { pt.once.Do(func() { close(pt.stopCh) }) }

func (pt *podTracker) uids() []types.UID {
	pt.mu.Lock()
	defer pt.mu.Unlock()
	out := make([]types.UID, 0, len(pt.seen))
	for uid := range pt.seen {
		out = append(out, uid)
	}
	slices.Sort(out)
	return out
}
