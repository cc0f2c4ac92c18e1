package cgroups

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestParseMountinfo(t *testing.T) {
	const info = `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime shared:9 - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/uni\040fied rw,relatime shared:7 master:1 - cgroup2 cgroup2 rw
`
	got, err := parseMountinfo(strings.NewReader(info))
	if err != nil {
		t.Fatal(err)
	}
	if got != "/sys/fs/cgroup/uni fied" {
		t.Fatalf("mountpoint = %q", got)
	}
	if _, err := parseMountinfo(strings.NewReader(info[:strings.LastIndex(info[:len(info)-1], "\n")+1])); err == nil {
		t.Fatal("found cgroup2 in mountinfo without one")
	}
}

func testParent(t *testing.T) string {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "wasmkube-test-" + hex.EncodeToString(b)
}

// TestPodCgroupOnThisKernel runs against the machine's real cgroup2
// hierarchy: limits are written and read back where the controller is
// available, and refused with a reason where it is not.
func TestPodCgroupOnThisKernel(t *testing.T) {
	mount, err := Mountpoint()
	if err != nil {
		t.Fatal(err)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(mount, &st); err != nil {
		t.Fatal(err)
	}
	if st.Type != unix.CGROUP2_SUPER_MAGIC {
		t.Fatalf("%s is not a cgroup2 filesystem", mount)
	}
	m, err := NewManager(testParent(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.Remove(m.Parent()); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Errorf("remove test parent: %v", err)
		}
	})
	for c, why := range m.Unavailable() {
		t.Logf("controller %s unavailable on this node: %s", c, why)
	}
	cg, err := m.Pod("0b5e4c1e-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := cg.Remove(ctx); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	if filepath.Dir(cg.Path()) != m.Parent() || filepath.Base(cg.Path()) != "pod0b5e4c1e-test" {
		t.Fatalf("pod cgroup at %s", cg.Path())
	}

	limits := []struct {
		controller, file, want string
		set                    func() error
	}{
		{"memory", "memory.max", "268435456", func() error { return cg.SetMemoryMax(256 << 20) }},
		{"cpu", "cpu.max", "50000 100000", func() error { return cg.SetCPUMax(50*time.Millisecond, 100*time.Millisecond) }},
		{"pids", "pids.max", "128", func() error { return cg.SetPidsMax(128) }},
	}
	for _, l := range limits {
		err := l.set()
		if _, missing := m.Unavailable()[l.controller]; missing {
			if !errors.Is(err, ErrControllerUnavailable) {
				t.Errorf("%s: err = %v, want ErrControllerUnavailable", l.controller, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("set %s: %v", l.file, err)
			continue
		}
		if got, err := cg.Get(l.file); err != nil || got != l.want {
			t.Errorf("%s = %q, %v; want %q", l.file, got, err, l.want)
		}
	}

	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	if err := cg.Add(cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	pids, err := cg.Procs()
	if err != nil || !slices.Equal(pids, []int{cmd.Process.Pid}) {
		t.Fatalf("procs = %v, %v; want [%d]", pids, err, cmd.Process.Pid)
	}
	self, err := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	wantLine := "0::" + strings.TrimPrefix(cg.Path(), mount)
	if !strings.Contains(string(self), wantLine+"\n") {
		t.Fatalf("/proc/pid/cgroup = %q, want a line %q", self, wantLine)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cg.Remove(ctx); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Errorf("process in the removed cgroup: wait = %v, want killed", err)
	}
	if _, err := os.Stat(cg.Path()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pod cgroup still exists: %v", err)
	}
	if err := cg.Remove(ctx); err != nil {
		t.Errorf("second Remove: %v", err)
	}
}

// TestSubtreeControlEnablement enables a controller this node does give to
// cgroup2 (hugetlb, when present) through the same path pod limits use, and
// writes and reads a limit through it.
func TestSubtreeControlEnablement(t *testing.T) {
	mount, err := Mountpoint()
	if err != nil {
		t.Fatal(err)
	}
	rootHas, err := readList(filepath.Join(mount, "cgroup.controllers"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(rootHas, "hugetlb") {
		t.Logf("hugetlb not on cgroup2 here (root offers %q); checking the refusal instead", rootHas)
	}
	rootFile := filepath.Join(mount, "cgroup.subtree_control")
	before, err := readList(rootFile)
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewManager(testParent(t), "hugetlb")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		os.Remove(m.Parent())
		// Give the root back as found; EBUSY means someone else now relies
		// on it, which is theirs to keep.
		if !slices.Contains(before, "hugetlb") {
			os.WriteFile(rootFile, []byte("-hugetlb"), 0)
		}
	})
	cg, err := m.Pod("hugetlb-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := cg.Remove(context.Background()); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	err = cg.Set("hugetlb", "hugetlb.2MB.max", "4194304")
	if !slices.Contains(rootHas, "hugetlb") {
		if !errors.Is(err, ErrControllerUnavailable) {
			t.Fatalf("err = %v, want ErrControllerUnavailable", err)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if got, err := cg.Get("hugetlb.2MB.max"); err != nil || got != "4194304" {
		t.Fatalf("hugetlb.2MB.max = %q, %v", got, err)
	}
	// A controller the hierarchy lacks names the hybrid layout as the cause.
	for _, c := range DefaultControllers() {
		if slices.Contains(rootHas, c) {
			continue
		}
		err := cg.Set(c, c+".max", "1")
		var ce *ControllerError
		if !errors.As(err, &ce) || !strings.Contains(ce.Reason, "cgroup v1") {
			t.Errorf("%s: err = %v, want a ControllerError naming cgroup v1", c, err)
		}
	}
}

// TestLimitFormats checks the exact values written, on a directory that
// stands in for a cgroup whose controllers are all enabled, since this
// node's cgroup2 may not offer them.
func TestLimitFormats(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "cgroup.controllers"), []byte("cpu memory pids\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cg := &Cgroup{path: dir}
	steps := []struct {
		set        func() error
		file, want string
	}{
		{func() error { return cg.SetMemoryMax(1 << 30) }, "memory.max", "1073741824"},
		{func() error { return cg.SetMemoryMax(0) }, "memory.max", "max"},
		{func() error { return cg.SetCPUMax(250*time.Millisecond, 100*time.Millisecond) }, "cpu.max", "250000 100000"},
		{func() error { return cg.SetCPUMax(-1, 100*time.Millisecond) }, "cpu.max", "max 100000"},
		{func() error { return cg.SetPidsMax(1024) }, "pids.max", "1024"},
		{func() error { return cg.SetPidsMax(-1) }, "pids.max", "max"},
	}
	for _, s := range steps {
		if err := s.set(); err != nil {
			t.Fatal(err)
		}
		if got, _ := cg.Get(s.file); got != s.want {
			t.Errorf("%s = %q, want %q", s.file, got, s.want)
		}
	}
	if err := cg.SetCPUMax(time.Millisecond, 2*time.Second); err == nil {
		t.Error("cpu period of 2s accepted")
	}
}
