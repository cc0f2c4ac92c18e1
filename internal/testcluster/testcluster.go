// Package testcluster starts a real control plane (embedded etcd, HTTPS API
// server) for tests of the components that talk to it, so that every such
// test exercises the real API rather than a fake.
package testcluster

import (
	"context"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/wasmkube/wasmkube/control/controllers/framework"
	"github.com/wasmkube/wasmkube/control/server"
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

// RunControllers runs the given controllers (and the scheduler, if it is
// among them) against client until the test ends, and fails the test if
// any of them stopped with an error.
func RunControllers(t testing.TB, client kubernetes.Interface, starters map[string]framework.Starter) {
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- framework.Run(ctx, framework.NewContext(client, 0), starters) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("controllers: %v", err)
		}
	})
}
