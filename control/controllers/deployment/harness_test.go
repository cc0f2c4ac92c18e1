package deployment

import (
	"context"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/wasmkube/wasmkube/control/controllers/framework"
	"github.com/wasmkube/wasmkube/control/server"
	"github.com/wasmkube/wasmkube/internal/simnode"
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
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := server.Start(ctx, server.Options{DataDir: t.TempDir(), SecurePort: 0})
	if err != nil {
		t.Fatalf("starting server: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	cs, err := kubernetes.NewForConfig(s.LoopbackConfig())
	if err != nil {
		t.Fatal(err)
	}
	nodeOpts.Bind = true
	if len(nodeOpts.Nodes) == 0 {
		nodeOpts.Nodes = []simnode.NodeSpec{{Name: "edge-1"}, {Name: "edge-2"}}
	}
	nodes, err := simnode.Start(ctx, cs, nodeOpts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nodes.Stop)
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	all := starters(s.LoopbackConfig())
	go func() { done <- framework.Run(runCtx, framework.NewContext(cs, 0), all) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("controllers: %v", err)
		}
	})
	return cs
}

// eventually polls cond until it holds, failing the test after timeout.
func eventually(t *testing.T, timeout time.Duration, what string, cond func(ctx context.Context) (bool, error)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var last error
	err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		ok, err := cond(ctx)
		last = err
		return ok && err == nil, nil
	})
	if err != nil {
		t.Fatalf("%s: not reached: %v (last error: %v)", what, err, last)
	}
}
