package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/wasmkube/wasmkube/sandbox/network"
	"github.com/wasmkube/wasmkube/sandbox/network/networktest"
)

// TestPodRoutes runs a node whose InternalIP is on a segment it shares
// with a second "node", a network namespace of the test with its own pod
// address. The second node is registered as a Node, gets its pod range
// from the control plane, and the agent routes that range through it
// (proto 119); a connection from the second node's pod address reaches a
// pod of the real node, which sees that address unchanged. Deleting the
// Node takes the route away.
func TestPodRoutes(t *testing.T) {
	suffix := networktest.RandHex(t, 3)
	var k [1]byte
	copy(k[:], suffix)
	// A /28 of the upper half of TEST-NET-3: never the machine's own
	// network (which may be any documentation range, TEST-NET-1 on the
	// test machines), nor the outside host or LoadBalancer pool of
	// TestServices (TEST-NET-2, 203.0.113.16/28).
	base := 128 + 16*(int(k[0])%8)
	nodeIP, peerIP := fmt.Sprintf("203.0.113.%d", base+1), fmt.Sprintf("203.0.113.%d", base+2)
	ns, hostEnd, peer := "wkrt-"+suffix, "wkr"+suffix, "wkrp"+suffix
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v\n%s", args, err, out)
		}
	}
	run("netns", "add", ns)
	t.Cleanup(func() {
		_ = exec.Command("ip", "link", "del", hostEnd).Run()
		if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v\n%s", ns, err, out)
		}
	})
	run("link", "add", hostEnd, "type", "veth", "peer", "name", peer)
	run("link", "set", peer, "netns", ns)
	run("addr", "add", nodeIP+"/28", "dev", hostEnd)
	run("link", "set", hostEnd, "up")
	run("-n", ns, "addr", "add", peerIP+"/28", "dev", peer)
	run("-n", ns, "link", "set", peer, "up")
	run("-n", ns, "link", "set", "lo", "up")

	// A /23: the node takes one /24 of it, the second node the other.
	nt := startNodeTest(t, NodeOptions{ClusterCIDR: networktest.FreeSubnetOfSize(t, 23),
		Args: []string{"--node-ip", nodeIP}}, helloImage)
	ctx := context.Background()
	self, err := nt.Client.CoreV1().Nodes().Get(ctx, nt.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	remote := "e2e-remote-" + suffix
	if _, err := nt.Client.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: remote}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The control plane writes the Node too (its pod range): a patch
	// cannot conflict with it.
	status := fmt.Sprintf(`{"status":{"addresses":[{"type":"InternalIP","address":%q}]}}`, peerIP)
	if _, err := nt.Client.CoreV1().Nodes().Patch(ctx, remote, types.MergePatchType, []byte(status), metav1.PatchOptions{}, "status"); err != nil {
		t.Fatalf("the second node's InternalIP: %v", err)
	}
	var remoteCIDR string
	waitFor(t, 30*time.Second, "the second node's pod range", func() bool {
		n, err := nt.Client.CoreV1().Nodes().Get(ctx, remote, metav1.GetOptions{})
		remoteCIDR = ""
		if err == nil {
			remoteCIDR = n.Spec.PodCIDR
		}
		return remoteCIDR != ""
	})
	want := fmt.Sprintf("%s via %s dev %s", remoteCIDR, peerIP, hostEnd)
	waitFor(t, 30*time.Second, "route "+want, func() bool { return strings.Contains(ourRoutes(t), want) })

	// The second node's pod: the first address of its range, routed back
	// to the node's pods through the node, as the second node's own agent
	// would.
	_, rc, _ := net.ParseCIDR(remoteCIDR)
	rc.IP[len(rc.IP)-1] = 1
	remotePod := rc.IP.String()
	run("-n", ns, "addr", "add", remotePod+"/32", "dev", "lo")
	run("-n", ns, "route", "add", self.Spec.PodCIDR, "via", nodeIP)

	pns := nt.namespace(t, "podroutes")
	nt.apply(t, pns, `apiVersion: v1
kind: Pod
metadata:
  name: hello
spec:
  containers:
  - name: hello
    image: `+helloImage+`
    imagePullPolicy: IfNotPresent
    ports:
    - containerPort: 8080
`)
	pod := nt.waitRunning(t, pns, "hello")
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true,
		DialContext: func(ctx context.Context, netw, addr string) (net.Conn, error) {
			var c net.Conn
			errc := make(chan error, 1)
			go func() {
				errc <- network.Do(filepath.Join("/run/netns", ns), func() error {
					var err error
					c, err = (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(remotePod)}}).DialContext(ctx, netw, addr)
					return err
				})
			}()
			return c, <-errc
		}}}
	url := "http://" + net.JoinHostPort(pod.Status.PodIP, "8080") + "/remote"
	var body string
	waitFor(t, 30*time.Second, "GET "+url+" from the second node's pod", func() bool {
		resp, err := client.Get(url)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		body = strings.TrimSpace(string(b))
		return resp.StatusCode == http.StatusOK
	})
	if body != remotePod {
		t.Errorf("the pod saw the connection from %s, want the second node's pod address %s", body, remotePod)
	}

	if err := nt.Client.CoreV1().Nodes().Delete(ctx, remote, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "route gone with its Node", func() bool { return !strings.Contains(ourRoutes(t), remoteCIDR+" ") })
}

// ourRoutes is `ip route show proto 119`.
func ourRoutes(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("ip", "route", "show", "proto", "119").CombinedOutput()
	if err != nil {
		t.Fatalf("ip route show proto 119: %v\n%s", err, out)
	}
	return string(out)
}

// waitFor polls cond until it holds, and fails the test if it has not
// within timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, timeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
