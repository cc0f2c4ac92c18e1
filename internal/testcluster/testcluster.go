// Package testcluster starts a real control plane (embedded etcd, HTTPS API
// server) for tests of the components that talk to it, so that every such
// test exercises the real API rather than a fake.
package testcluster

import (
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/wasmkube/wasmkube/control/controllers/framework"
	"github.com/wasmkube/wasmkube/control/server"
	"github.com/wasmkube/wasmkube/internal/simnode"
)

// Start runs an API server on free loopback ports with its data in a
// temporary directory, and returns it with an admin clientset. The server
// is shut down when the test ends. It runs no controllers: a test starts
// the ones it tests.
func Start(t testing.TB) (*server.Server, kubernetes.Interface) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := server.Start(ctx, server.Options{DataDir: t.TempDir(), SecurePort: 0})
	if err != nil {
		t.Fatalf("starting the API server: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("stopping the API server: %v", err)
		}
	})
	client, err := kubernetes.NewForConfig(s.LoopbackConfig())
	if err != nil {
		t.Fatalf("admin client: %v", err)
	}
	return s, client
}

// StartNodes runs simulated nodes, as opts describe them, against client
// until the test ends.
func StartNodes(t testing.TB, client kubernetes.Interface, opts simnode.Options) *simnode.Cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	nodes, err := simnode.Start(ctx, client, opts)
	if err != nil {
		t.Fatalf("starting simulated nodes: %v", err)
	}
	t.Cleanup(nodes.Stop)
	return nodes
}

// RunControllers runs the given controllers (and the scheduler, if it is
// among them) against client until the test ends, and fails the test if
// any of them stopped with an error.
func RunControllers(t testing.TB, client kubernetes.Interface, starters map[string]framework.Starter) {
	t.Helper()
	RunControllersWith(t, framework.NewContext(client, 0), starters)
}

// RunControllersWith is RunControllers with a context the test has
// prepared, for instance one with a fake clock.
func RunControllersWith(t testing.TB, cc *framework.Context, starters map[string]framework.Starter) {
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- framework.Run(ctx, cc, starters) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("controllers: %v", err)
		}
	})
}

// Eventually polls cond every 100ms until it returns true with no error,
// and fails the test if that has not happened within timeout. An error
// from cond does not end the wait; it is reported if the wait fails.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func(ctx context.Context) (bool, error)) {
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

// WaitEvent waits up to ten seconds for an event in the default namespace
// about object with the given reason and a message that starts with
// msgPrefix, and marks the test failed if none comes.
func WaitEvent(ctx context.Context, t testing.TB, client kubernetes.Interface, object, reason, msgPrefix string) {
	t.Helper()
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		evs, err := client.CoreV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + object})
		if err != nil {
			return false, err
		}
		for _, e := range evs.Items {
			if e.Reason == reason && strings.HasPrefix(e.Message, msgPrefix) {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Errorf("no event %s %q for %s: %v", reason, msgPrefix, object, err)
	}
}
