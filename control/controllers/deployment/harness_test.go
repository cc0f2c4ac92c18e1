package deployment

import (
	"context"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/wasmkube/wasmkube/control/controllers/framework"
	"github.com/wasmkube/wasmkube/internal/simnode"
	"github.com/wasmkube/wasmkube/internal/testcluster"
)

// startCluster runs a real API server, simulated nodes that bind and run
// pods, and the given controllers; everything stops at the test's end.
func startCluster(t *testing.T, nodeOpts simnode.Options, starters map[string]framework.Starter) kubernetes.Interface {
	t.Helper()
	return startClusterWith(t, nodeOpts, func(*rest.Config) map[string]framework.Starter { return starters })
}

// startClusterWith is startCluster for controllers that need the server's
// rest.Config (the garbage collector's metadata informers).
func startClusterWith(t *testing.T, nodeOpts simnode.Options, starters func(*rest.Config) map[string]framework.Starter) kubernetes.Interface {
	t.Helper()
	s, cs := testcluster.Start(t)
	nodeOpts.Bind = true
	if len(nodeOpts.Nodes) == 0 {
		nodeOpts.Nodes = []simnode.NodeSpec{{Name: "edge-1"}, {Name: "edge-2"}}
	}
	testcluster.StartNodes(t, cs, nodeOpts)
	testcluster.RunControllers(t, cs, starters(s.LoopbackConfig()))
	return cs
}

// eventually polls cond until it holds, failing the test after timeout.
func eventually(t *testing.T, timeout time.Duration, what string, cond func(ctx context.Context) (bool, error)) {
	t.Helper()
	testcluster.Eventually(t, timeout, what, cond)
}
