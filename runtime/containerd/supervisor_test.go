package containerd

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	client "github.com/containerd/containerd"
)

// requireContainerd fails, never skips: the node cannot work without
// containerd, and a skipped test would hide that.
func requireContainerd(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("containerd"); err != nil {
		t.Fatalf("containerd is not on PATH (%v): `make test` installs it through internal/scripts/deps.sh", err)
	}
	if os.Geteuid() != 0 {
		t.Fatalf("these tests run containerd and need root")
	}
}

// shortDir keeps socket paths well under the unix limit; t.TempDir paths
// carry the test name and can be too long.
func shortDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "wkc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// processesUsing lists live (non-zombie) processes whose command line names
// the given config file: the supervisor's children, and any it leaked.
func processesUsing(t *testing.T, config string) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !bytes.Contains(cmdline, []byte(config)) {
			continue
		}
		if st, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat")); err == nil && strings.Contains(string(st), ") Z ") {
			continue
		}
		pids = append(pids, pid)
	}
	return pids
}

func TestSupervisorRestartsAndStops(t *testing.T) {
	requireContainerd(t)
	dir := shortDir(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	s, err := Start(ctx, Config{Dir: dir, StopGrace: 5 * time.Second})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			s.Stop()
		}
	})
	if got, want := s.Address(), filepath.Join(dir, "containerd.sock"); got != want {
		t.Fatalf("Address() = %q, want %q", got, want)
	}
	for _, p := range []string{"config.toml", "root", "state", "containerd.log", "containerd.sock", "containerd.sock.ttrpc"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Errorf("expected %s under Dir: %v", p, err)
		}
	}

	cl, err := client.New(s.Address())
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer cl.Close()
	v, err := cl.Version(ctx)
	if err != nil {
		t.Fatalf("Version: %v", err)
	}
	t.Logf("containerd %s", v.Version)

	// The CRI plugin must be off: it is the one that would make this
	// containerd heavy.
	plugins, err := cl.IntrospectionService().Plugins(ctx, []string{`id==cri`})
	if err != nil {
		t.Fatalf("Plugins: %v", err)
	}
	if len(plugins.Plugins) != 0 {
		t.Errorf("cri plugin is loaded: %+v", plugins.Plugins)
	}
	// Disabling a plugin another one depends on shows only as an init
	// error of the dependant: the services the node uses must all load.
	all, err := cl.IntrospectionService().Plugins(ctx, nil)
	if err != nil {
		t.Fatalf("Plugins: %v", err)
	}
	for _, p := range all.Plugins {
		if p.InitErr != nil && p.Type != "io.containerd.snapshotter.v1" {
			t.Errorf("plugin %s.%s failed to load: %s", p.Type, p.ID, p.InitErr.Message)
		}
	}

	first := s.PID()
	if first == 0 {
		t.Fatal("PID() = 0 after Start")
	}
	if err := syscall.Kill(first, syscall.SIGKILL); err != nil {
		t.Fatalf("kill containerd: %v", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		pid := s.PID()
		if pid != 0 && pid != first && s.Restarts() >= 1 {
			// The client made before the crash must work again:
			// gRPC redials the same socket.
			vctx, vcancel := context.WithTimeout(ctx, 2*time.Second)
			_, err := cl.Version(vctx)
			vcancel()
			if err == nil {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("containerd was not restarted: pid %d (first %d), restarts %d", s.PID(), first, s.Restarts())
		}
		time.Sleep(100 * time.Millisecond)
	}

	second := s.PID()
	if err := s.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	stopped = true
	if left := processesUsing(t, filepath.Join(dir, "config.toml")); len(left) != 0 {
		t.Fatalf("containerd processes left after Stop: %v", left)
	}
	if err := syscall.Kill(second, 0); err == nil {
		t.Fatalf("containerd %d still exists after Stop", second)
	}
	if _, err := os.Stat(filepath.Join(dir, "containerd.pid")); !os.IsNotExist(err) {
		t.Errorf("pid file left after Stop: %v", err)
	}
	if err := s.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

func TestStartRejectsLongDir(t *testing.T) {
	dir := "/tmp/" + strings.Repeat("d", 100)
	_, err := Start(context.Background(), Config{Dir: dir})
	if err == nil || !strings.Contains(err.Error(), "too long") {
		t.Fatalf("Start with a %d-byte dir: err = %v, want a too-long error", len(dir), err)
	}
	if _, statErr := os.Stat(dir); !os.IsNotExist(statErr) {
		t.Errorf("Start created %s although it refused it", dir)
		os.RemoveAll(dir)
	}
}

func TestStartReportsBadBinary(t *testing.T) {
	dir := shortDir(t)
	if _, err := Start(context.Background(), Config{Dir: dir, Binary: filepath.Join(dir, "no-such-containerd")}); err == nil {
		t.Fatal("Start with a missing binary succeeded")
	}
	// A binary that exits at once must fail Start with its output, not
	// hang until the start limit.
	script := filepath.Join(dir, "fake-containerd")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho 'fake containerd: refusing to run' >&2\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := Start(ctx, Config{Dir: dir, Binary: script})
	if err == nil || !strings.Contains(err.Error(), "refusing to run") {
		t.Fatalf("Start with a failing binary: err = %v, want the binary's output in it", err)
	}
}

func TestStartReplacesLeftoverContainerd(t *testing.T) {
	requireContainerd(t)
	dir := shortDir(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	l, err := newLayout(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.writeConfig(); err != nil {
		t.Fatal(err)
	}
	// A containerd whose supervisor died without Stop (as after an agent
	// crash), recorded in the pid file.
	orphan := exec.Command("containerd", "--config", l.config)
	if err := orphan.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { orphan.Wait(); close(exited) }()
	t.Cleanup(func() { orphan.Process.Kill(); <-exited })
	if err := os.WriteFile(l.pidFile, []byte(strconv.Itoa(orphan.Process.Pid)), 0o600); err != nil {
		t.Fatal(err)
	}
	for probe(ctx, l.grpc) != nil {
		time.Sleep(100 * time.Millisecond)
	}

	s, err := Start(ctx, Config{Dir: dir})
	if err != nil {
		t.Fatalf("Start over a leftover containerd: %v", err)
	}
	defer s.Stop()
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		t.Fatal("the leftover containerd was not stopped")
	}
	if s.PID() == orphan.Process.Pid {
		t.Fatal("supervisor reports the leftover process as its own")
	}
}
