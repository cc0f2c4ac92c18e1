// Package containerdtest starts a private, supervised containerd for a
// test, as the agent does for a node, and stops it when the test ends.
package containerdtest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/containerd/containerd"

	supervisor "github.com/wasmkube/wasmkube/runtime/containerd"
)

// Start runs containerd with its files under dir/c and returns a client of
// it. dir must be short, since containerd's socket path has to fit a unix
// socket address; "" makes a fresh one under /tmp, removed at the end. A
// missing binary fails the test: a node needs containerd, and a skip would
// hide that.
func Start(t testing.TB, dir string) *containerd.Client {
	t.Helper()
	if _, err := exec.LookPath("containerd"); err != nil {
		t.Fatalf("containerd is not on PATH (%v): `make test` installs it through internal/scripts/deps.sh", err)
	}
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("/tmp", "wkc"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := supervisor.Start(ctx, supervisor.Config{Dir: filepath.Join(dir, "c")})
	if err != nil {
		t.Fatalf("start containerd: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("stop containerd: %v", err)
		}
	})
	cl, err := containerd.New(s.Address())
	if err != nil {
		t.Fatalf("connect to containerd: %v", err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}
