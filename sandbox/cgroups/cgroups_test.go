package cgroups

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// testParent returns a parent "/wasmkube-test-<random>/pods" of its own and
// removes the whole "/wasmkube-test-<random>" tree from every hierarchy of
// the host when the test ends, killing whatever a failed test left there,
// and checks that nothing of it remains.
func testParent(t *testing.T) string {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	top := "/wasmkube-test-" + hex.EncodeToString(b)
	t.Cleanup(func() {
		hs, err := Hierarchies()
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := (&Cgroup{path: top, hierarchies: hs}).Remove(ctx); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		for _, h := range hs {
			if _, err := os.Stat(filepath.Join(h.Mountpoint, top)); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("%s left in %s: %v", top, h.Mountpoint, err)
			}
		}
	})
	return top + "/pods"
}

// TestHierarchiesOfThisHost checks the discovery against the kernel's own
// list of the hierarchies this process is in.
func TestHierarchiesOfThisHost(t *testing.T) {
	hs, err := Hierarchies()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, h := range hs {
		c := slices.Clone(h.Controllers)
		slices.Sort(c)
		got = append(got, strings.Join(c, ","))
	}
	data, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		f := strings.SplitN(line, ":", 3)
		c := strings.Split(f[1], ",")
		slices.Sort(c)
		want = append(want, strings.Join(c, ","))
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("hierarchies by controllers = %q, /proc/self/cgroup lists %q", got, want)
	}
}

// controllerFile is the path of a pod's interface file of controller,
// found without the package's lookup: v1name on the v1 hierarchy holding
// controller, else v2name on cgroup2.
func controllerFile(t *testing.T, hs []Hierarchy, cgPath, controller, v1name, v2name string) string {
	t.Helper()
	for _, h := range hs {
		if h.Has(controller) {
			return filepath.Join(h.Mountpoint, cgPath, v1name)
		}
	}
	for _, h := range hs {
		if h.Unified {
			return filepath.Join(h.Mountpoint, cgPath, v2name)
		}
	}
	t.Fatalf("no hierarchy for %s", controller)
	return ""
}

func onV1(hs []Hierarchy, controller string) bool {
	return slices.ContainsFunc(hs, func(h Hierarchy) bool { return h.Has(controller) })
}

func readFile(t *testing.T, file string) string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(data))
}

func TestPodLimits(t *testing.T) {
	m, err := NewManager(testParent(t))
	if err != nil {
		t.Fatal(err)
	}
	for c, why := range m.Unavailable() {
		t.Errorf("controller %s unavailable on this host: %s", c, why)
	}
	cg, err := m.Pod("limits")
	if err != nil {
		t.Fatal(err)
	}
	hs := m.Hierarchies()
	file := func(controller, v1name, v2name string) string {
		return controllerFile(t, hs, cg.Path(), controller, v1name, v2name)
	}
	memFile := file("memory", "memory.limit_in_bytes", "memory.max")
	unlimited := "max"
	if onV1(hs, "memory") {
		// v1 shows no limit as the largest page-aligned value, as the
		// root, which has no limit, does.
		unlimited = readFile(t, controllerFile(t, hs, "/", "memory", "memory.limit_in_bytes", ""))
	}
	steps := []struct {
		name string
		set  func() error
		want map[string]string // file -> content
	}{
		{"memory 256Mi", func() error { return cg.SetMemoryLimit(256 << 20) },
			map[string]string{memFile: "268435456"}},
		{"memory unlimited", func() error { return cg.SetMemoryLimit(0) },
			map[string]string{memFile: unlimited}},
		{"cpu 0.5 shares 512", func() error { return cg.SetCPU(50*time.Millisecond, 100*time.Millisecond, 512) },
			cpuWant(file, !onV1(hs, "cpu"), "50000", "100000", "512", "20")},
		{"cpu unlimited", func() error { return cg.SetCPU(0, 0, 0) },
			cpuWant(file, !onV1(hs, "cpu"), "-1", "100000", "512", "20")},
		{"pids 128", func() error { return cg.SetPidsMax(128) },
			map[string]string{file("pids", "pids.max", "pids.max"): "128"}},
		{"pids unlimited", func() error { return cg.SetPidsMax(-1) },
			map[string]string{file("pids", "pids.max", "pids.max"): "max"}},
	}
	for _, s := range steps {
		if err := s.set(); err != nil {
			t.Errorf("%s: %v", s.name, err)
			continue
		}
		for f, want := range s.want {
			if got := readFile(t, f); got != want {
				t.Errorf("%s: %s = %q, want %q", s.name, f, got, want)
			}
		}
	}
	if err := cg.SetCPU(time.Millisecond, 2*time.Second, 0); err == nil {
		t.Error("cpu period of 2s accepted")
	}
}

// cpuWant lists the files SetCPU writes and their expected contents, for
// the hierarchy version in use.
func cpuWant(file func(c, v1, v2 string) string, unified bool, quota, period, shares, weight string) map[string]string {
	if unified {
		if quota == "-1" {
			quota = "max"
		}
		return map[string]string{
			file("cpu", "", "cpu.max"):    quota + " " + period,
			file("cpu", "", "cpu.weight"): weight,
		}
	}
	return map[string]string{
		file("cpu", "cpu.cfs_quota_us", ""):  quota,
		file("cpu", "cpu.cfs_period_us", ""): period,
		file("cpu", "cpu.shares", ""):        shares,
	}
}

// TestPodLifecycle runs real processes in a pod cgroup and in a container
// cgroup inside it, as runc would make one, and removes it all.
func TestPodLifecycle(t *testing.T) {
	parent := testParent(t)
	m, err := NewManager(parent)
	if err != nil {
		t.Fatal(err)
	}
	hs := m.Hierarchies()
	cg, err := m.Pod("0b5e4c1e-a")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Pod("0b5e4c1e-a"); err != nil {
		t.Fatalf("Pod again: %v", err)
	}
	if want := parent + "/pod0b5e4c1e-a"; cg.Path() != want {
		t.Fatalf("Path = %q, want %q", cg.Path(), want)
	}
	for _, h := range hs {
		if fi, err := os.Stat(filepath.Join(h.Mountpoint, cg.Path())); err != nil || !fi.IsDir() {
			t.Errorf("pod cgroup in %s: %v", h.Mountpoint, err)
		}
	}
	other, err := m.Pod("0b5e4c1e-b")
	if err != nil {
		t.Fatal(err)
	}
	if uids, err := m.Pods(); err != nil || !slices.Equal(uids, []string{"0b5e4c1e-a", "0b5e4c1e-b"}) {
		t.Fatalf("Pods = %q, %v", uids, err)
	}

	if n, err := cg.MemoryUsage(); err != nil || n != 0 {
		t.Errorf("memory usage of an empty pod = %d, %v", n, err)
	}
	// The shell waits to be told, so that what it allocates when it
	// execs sleep is charged to the pod.
	host := exec.Command("sh", "-c", "read x; exec sleep 60")
	stdin, err := host.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	start(t, host)
	if err := cg.Add(host.Process.Pid); err != nil {
		t.Fatal(err)
	}
	memProcs := controllerFile(t, hs, cg.Path(), "memory", "cgroup.procs", "cgroup.procs")
	if procs := strings.Fields(readFile(t, memProcs)); !slices.Equal(procs, []string{strconv.Itoa(host.Process.Pid)}) {
		t.Errorf("%s = %q, want the host's pid %d", memProcs, procs, host.Process.Pid)
	}
	// Every line of /proc/<pid>/cgroup (one a hierarchy) names the pod.
	for _, line := range strings.Split(readFile(t, "/proc/"+strconv.Itoa(host.Process.Pid)+"/cgroup"), "\n") {
		if !strings.HasSuffix(line, ":"+cg.Path()) {
			t.Errorf("host process in %q, want %s in every hierarchy", line, cg.Path())
		}
	}
	if _, err := stdin.Write([]byte("\n")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		comm, _ := os.ReadFile("/proc/" + strconv.Itoa(host.Process.Pid) + "/comm")
		return string(comm) == "sleep\n"
	})
	if n, err := cg.MemoryUsage(); err != nil || n <= 0 {
		t.Errorf("memory usage after exec in the pod = %d, %v", n, err)
	}

	// A container cgroup inside the pod, holding a process, as runc
	// leaves one when a container was not deleted. The process joins the
	// v1 hierarchies only (where there are any), so that cgroup.kill does
	// not reach it and Remove must find and signal it.
	ctr := path.Join(cg.Path(), "ctr1")
	container := exec.Command("sleep", "60")
	start(t, container)
	for _, h := range hs {
		if h.Unified && len(hs) > 1 {
			continue
		}
		if err := ensureDir(h, ctr); err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(h.Mountpoint, ctr, "cgroup.procs")
		if err := os.WriteFile(file, []byte(strconv.Itoa(container.Process.Pid)), 0); err != nil {
			t.Fatal(err)
		}
	}
	want := []int{host.Process.Pid, container.Process.Pid}
	slices.Sort(want)
	if pids, err := cg.Procs(); err != nil || !slices.Equal(pids, want) {
		t.Errorf("Procs = %v, %v; want %v", pids, err, want)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cg.Remove(ctx); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []*exec.Cmd{host, container} {
		if sig := killedBy(cmd); sig != syscall.SIGKILL {
			t.Errorf("%s: ended by %v, want SIGKILL", cmd, sig)
		}
	}
	for _, h := range hs {
		if _, err := os.Stat(filepath.Join(h.Mountpoint, cg.Path())); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("pod cgroup still in %s: %v", h.Mountpoint, err)
		}
	}
	if err := cg.Remove(ctx); err != nil {
		t.Errorf("second Remove: %v", err)
	}
	if uids, err := m.Pods(); err != nil || !slices.Equal(uids, []string{"0b5e4c1e-b"}) {
		t.Errorf("Pods after Remove = %q, %v", uids, err)
	}
	if err := other.Remove(ctx); err != nil {
		t.Fatal(err)
	}
	if uids, err := m.Pods(); err != nil || len(uids) != 0 {
		t.Errorf("Pods after removing all = %q, %v", uids, err)
	}
}

func start(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
}

// killedBy reaps cmd and says which signal ended it, -1 for none.
func killedBy(cmd *exec.Cmd) syscall.Signal {
	cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return ws.Signal()
	}
	return -1
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
	}
}

// TestReleaseRemovesOnlyAnEmptyParent: a node shut down with pods keeps
// their parent; an empty one leaves nothing.
func TestReleaseRemovesOnlyAnEmptyParent(t *testing.T) {
	parent := testParent(t)
	m, err := NewManager(parent)
	if err != nil {
		t.Fatal(err)
	}
	pod, err := m.Pod("release-uid")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Release(); err != nil {
		t.Fatalf("Release with a pod: %v", err)
	}
	for _, h := range m.Hierarchies() {
		if _, err := os.Stat(filepath.Join(h.Mountpoint, parent)); err != nil {
			t.Errorf("parent gone from %s while a pod cgroup was in it: %v", h.Mountpoint, err)
		}
	}
	if err := pod.Remove(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := m.Release(); err != nil {
		t.Fatalf("Release when empty: %v", err)
	}
	for _, h := range m.Hierarchies() {
		if _, err := os.Stat(filepath.Join(h.Mountpoint, parent)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("empty parent left in %s: %v", h.Mountpoint, err)
		}
	}
}
