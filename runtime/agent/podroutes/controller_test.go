package podroutes

import (
	"context"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/wasmkube/wasmkube/internal/testcluster"
)

// TestRoutesAgainstAPIServer runs the controller against a real API server,
// with its routes in a network namespace of the test whose only interface
// is on 192.0.2.0/24, and follows Nodes through their life.
func TestRoutesAgainstAPIServer(t *testing.T) {
	_, cs := testcluster.Start(t)
	ctx := context.Background()
	n := newTestNS(t)
	n.addLink(t, "eth0", "192.0.2.1/24")
	// Made by someone else: one to a range no Node has, one to exactly the
	// pod range of n5. Both must stay, and n5 gets no route of ours.
	n.addRoute(t, "203.0.113.128/25", "192.0.2.50", 4)
	n.addRoute(t, "198.51.100.64/28", "192.0.2.51", 4)
	// Left by an earlier run for a Node that no longer exists.
	n.addRoute(t, "198.51.100.240/28", "192.0.2.99", Protocol)
	foreign := []string{
		"203.0.113.128/25 via 192.0.2.50 dev eth0 proto 4",
		"198.51.100.64/28 via 192.0.2.51 dev eth0 proto 4",
	}

	createNode(t, cs, "n1", "198.51.100.0/28", "192.0.2.1")    // this node
	createNode(t, cs, "n2", "198.51.100.16/28", "192.0.2.2")   // a neighbour
	createNode(t, cs, "n3", "198.51.100.32/28", "203.0.113.9") // not on the segment
	createNode(t, cs, "n4", "", "192.0.2.4")                   // no pod range yet
	createNode(t, cs, "n5", "198.51.100.64/28", "192.0.2.5")   // its range is routed by someone else

	stop := startController(t, cs, WithNodeName("n1"), WithNetlink(n.h))
	n2 := "198.51.100.16/28 via 192.0.2.2 dev eth0 proto 119"
	n.waitRoutes(t, "start: the neighbour routed, the stale route gone, the foreign ones kept", append(foreign, n2)...)
	testcluster.WaitEvent(ctx, t, cs, "n3", ReasonNoRoute, "pod range 198.51.100.32/28: its InternalIP 203.0.113.9 is on no directly connected subnet")
	testcluster.WaitEvent(ctx, t, cs, "n5", ReasonNoRoute, "pod range 198.51.100.64/28 already has a route not made by wasmkube")
	// n3's and n5's syncs have run: still no route for either, nor for n1.
	n.waitRoutes(t, "after the unreachable node's sync", append(foreign, n2)...)

	// The allocator gives n4 its range.
	node, err := cs.CoreV1().Nodes().Get(ctx, "n4", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	node.Spec.PodCIDR, node.Spec.PodCIDRs = "198.51.100.48/28", []string{"198.51.100.48/28"}
	if _, err := cs.CoreV1().Nodes().Update(ctx, node, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	n4 := "198.51.100.48/28 via 192.0.2.4 dev eth0 proto 119"
	n.waitRoutes(t, "n4 got its pod range", append(foreign, n2, n4)...)

	// n2 moves to another address.
	setInternalIP(t, cs, "n2", "192.0.2.3")
	n2 = "198.51.100.16/28 via 192.0.2.3 dev eth0 proto 119"
	n.waitRoutes(t, "n2 changed its InternalIP", append(foreign, n2, n4)...)

	// n3 moves onto the segment: it gets its route.
	setInternalIP(t, cs, "n3", "192.0.2.33")
	n3 := "198.51.100.32/28 via 192.0.2.33 dev eth0 proto 119"
	n.waitRoutes(t, "n3 became reachable", append(foreign, n2, n3, n4)...)

	// A Node's range changes only by making the Node again.
	if err := cs.CoreV1().Nodes().Delete(ctx, "n2", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	n.waitRoutes(t, "n2 deleted", append(foreign, n3, n4)...)
	createNode(t, cs, "n2", "198.51.100.80/28", "192.0.2.2")
	n2 = "198.51.100.80/28 via 192.0.2.2 dev eth0 proto 119"
	n.waitRoutes(t, "n2 made again with another range", append(foreign, n2, n3, n4)...)

	// A Node deleted while no controller runs leaves a stale route of
	// ours, which the next run removes; the others stay.
	stop()
	if err := cs.CoreV1().Nodes().Delete(ctx, "n4", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	n.waitRoutes(t, "stopped: the routes stay", append(foreign, n2, n3, n4)...)
	startController(t, cs, WithNodeName("n1"), WithNetlink(n.h))
	n.waitRoutes(t, "restarted: the deleted node's route gone", append(foreign, n2, n3)...)
}

// TestForeignRoutesInsideAPodRange: a route not ours to a part of a
// node's pod range takes that part's traffic, so the node gets its route
// and a Warning naming the part; a foreign route around the range (a
// larger prefix) is no conflict and goes unmentioned.
func TestForeignRoutesInsideAPodRange(t *testing.T) {
	_, cs := testcluster.Start(t)
	n := newTestNS(t)
	n.addLink(t, "eth0", "192.0.2.1/24")
	n.addRoute(t, "198.51.100.84/30", "192.0.2.52", 4)
	n.addRoute(t, "198.51.100.0/24", "192.0.2.53", 4)
	createNode(t, cs, "n1", "198.51.100.64/28", "192.0.2.1") // this node
	createNode(t, cs, "n2", "198.51.100.80/28", "192.0.2.2")

	startController(t, cs, WithNodeName("n1"), WithNetlink(n.h))
	n.waitRoutes(t, "n2 routed beside the foreign routes",
		"198.51.100.84/30 via 192.0.2.52 dev eth0 proto 4",
		"198.51.100.0/24 via 192.0.2.53 dev eth0 proto 4",
		"198.51.100.80/28 via 192.0.2.2 dev eth0 proto 119")
	testcluster.WaitEvent(context.Background(), t, cs, "n2", ReasonNoRoute,
		"parts of pod range 198.51.100.80/28 have routes not made by wasmkube (198.51.100.84/30 proto 4), which take those parts' traffic elsewhere")
}
