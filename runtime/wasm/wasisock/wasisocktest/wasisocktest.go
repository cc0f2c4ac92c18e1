// Package wasisocktest runs WASI guests on wasisock's host module for the
// tests of packages whose guests use sockets: the guest runs in the
// background with a socket table, and the test's end stops it, closes the
// table and, on failure, shows what the guest printed.
package wasisocktest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/sys"

	"github.com/wasmkube/wasmkube/internal/syncbuf"
	"github.com/wasmkube/wasmkube/runtime/wasm/wasisock"
)

// Guest is one running instance.
type Guest struct {
	Name           string
	Stdout, Stderr syncbuf.Buffer
	// Done receives how the guest ended: nil for exit code 0. Whoever
	// takes the value puts it back, for the cleanup.
	Done chan error
}

// Start runs wasm with the configuration mc (its stdout and stderr are
// the Guest's) and the sockets of table, until the test ends; the table
// is closed once the guest has stopped. cache may be nil.
func Start(t testing.TB, name string, wasm []byte, cache wazero.CompilationCache, table *wasisock.Table, mc wazero.ModuleConfig) *Guest {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	rc := wazero.NewRuntimeConfig().WithCloseOnContextDone(true)
	if cache != nil {
		rc = rc.WithCompilationCache(cache)
	}
	r := wazero.NewRuntimeWithConfig(ctx, rc)
	if _, err := wasisock.Instantiate(ctx, r); err != nil {
		t.Fatal(err)
	}
	compiled, err := r.CompileModule(ctx, wasm)
	if err != nil {
		t.Fatal(err)
	}
	g := &Guest{Name: name, Done: make(chan error, 1)}
	mc = mc.WithStdout(&g.Stdout).WithStderr(&g.Stderr)
	go func() {
		_, err := r.InstantiateModule(wasisock.WithTable(ctx, table), compiled, mc)
		var exit *sys.ExitError
		if errors.As(err, &exit) && exit.ExitCode() == 0 {
			err = nil
		}
		g.Done <- err
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-g.Done:
		case <-time.After(time.Minute):
			t.Errorf("%s did not stop within a minute of cancellation", name)
		}
		_ = r.Close(context.Background())
		if err := table.Close(); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("%s stdout:\n%s\n%s stderr:\n%s", name, g.Stdout.String(), name, g.Stderr.String())
		}
	})
	return g
}

// Wait waits for the guest to exit and returns its stdout; an exit other
// than 0, or none within timeout, fails the test.
func (g *Guest) Wait(t testing.TB, timeout time.Duration) string {
	t.Helper()
	select {
	case err := <-g.Done:
		g.Done <- err
		if err != nil {
			t.Fatalf("%s: %v\nstdout: %s\nstderr: %s", g.Name, err, g.Stdout.String(), g.Stderr.String())
		}
	case <-time.After(timeout):
		t.Fatalf("%s still running after %s\nstdout: %s\nstderr: %s", g.Name, timeout, g.Stdout.String(), g.Stderr.String())
	}
	return g.Stdout.String()
}

// WaitFor polls cond for up to a minute until it holds; a guest that exits
// first fails the test.
func (g *Guest) WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		select {
		case err := <-g.Done:
			g.Done <- err
			t.Fatalf("%s exited (%v) before %s", g.Name, err, what)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s within a minute", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
