package cgroups

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestLimitFormats checks the exact values written for both versions, on
// directories that stand in for a pod cgroup whose controllers are all
// available, since this host gives cgroup2 none of them.
func TestLimitFormats(t *testing.T) {
	v1 := Hierarchy{Mountpoint: t.TempDir(), Controllers: []string{"cpu", "cpuacct", "memory", "pids"}}
	v2 := Hierarchy{Mountpoint: t.TempDir(), Unified: true}
	for _, h := range []Hierarchy{v1, v2} {
		if err := os.Mkdir(filepath.Join(h.Mountpoint, "pod"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(v2.Mountpoint, "pod", "cgroup.controllers"), []byte("cpu memory pids\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	type want map[string]string // file -> content
	tests := []struct {
		name       string
		set        func(*Cgroup) error
		onV1, onV2 want
	}{
		{"memory", func(c *Cgroup) error { return c.SetMemoryLimit(1 << 30) },
			want{"memory.limit_in_bytes": "1073741824"}, want{"memory.max": "1073741824"}},
		{"memory unlimited", func(c *Cgroup) error { return c.SetMemoryLimit(0) },
			want{"memory.limit_in_bytes": "-1"}, want{"memory.max": "max"}},
		{"cpu", func(c *Cgroup) error { return c.SetCPU(250*time.Millisecond, 100*time.Millisecond, 1024) },
			want{"cpu.cfs_quota_us": "250000", "cpu.cfs_period_us": "100000", "cpu.shares": "1024"},
			want{"cpu.max": "250000 100000", "cpu.weight": "39"}},
		{"cpu unlimited, default period, minimum shares", func(c *Cgroup) error { return c.SetCPU(-1, 0, 2) },
			want{"cpu.cfs_quota_us": "-1", "cpu.cfs_period_us": "100000", "cpu.shares": "2"},
			want{"cpu.max": "max 100000", "cpu.weight": "1"}},
		{"cpu shares kept", func(c *Cgroup) error { return c.SetCPU(10*time.Millisecond, 20*time.Millisecond, 0) },
			want{"cpu.cfs_quota_us": "10000", "cpu.cfs_period_us": "20000", "cpu.shares": "2"},
			want{"cpu.max": "10000 20000", "cpu.weight": "1"}},
		{"pids", func(c *Cgroup) error { return c.SetPidsMax(1024) },
			want{"pids.max": "1024"}, want{"pids.max": "1024"}},
		{"pids unlimited", func(c *Cgroup) error { return c.SetPidsMax(-1) },
			want{"pids.max": "max"}, want{"pids.max": "max"}},
	}
	for _, tt := range tests {
		for _, h := range []Hierarchy{v1, v2} {
			c := &Cgroup{path: "/pod", hierarchies: []Hierarchy{h}}
			files := tt.onV1
			if h.Unified {
				files = tt.onV2
			}
			if err := tt.set(c); err != nil {
				t.Errorf("%s (unified %v): %v", tt.name, h.Unified, err)
				continue
			}
			for name, w := range files {
				if got := readFile(t, filepath.Join(h.Mountpoint, "pod", name)); got != w {
					t.Errorf("%s (unified %v): %s = %q, want %q", tt.name, h.Unified, name, got, w)
				}
			}
		}
	}
}

func TestSharesToWeight(t *testing.T) {
	// The values runc's ConvertCPUSharesToCgroupV2Value gives, with
	// out-of-range shares clamped as the kernel clamps cpu.shares.
	for shares, weight := range map[uint64]uint64{1: 1, 2: 1, 512: 20, 1024: 39, 262144: 10000, 1 << 20: 10000} {
		if got := sharesToWeight(shares); got != weight {
			t.Errorf("sharesToWeight(%d) = %d, want %d", shares, got, weight)
		}
	}
}

// TestUnavailableController uses this host's real hierarchies with some
// left out: a controller bound to none of the remaining ones is refused
// with ErrControllerUnavailable, never written to the wrong hierarchy.
func TestUnavailableController(t *testing.T) {
	all, err := Hierarchies()
	if err != nil {
		t.Fatal(err)
	}
	unified := slices.DeleteFunc(slices.Clone(all), func(h Hierarchy) bool { return !h.Unified })
	noMemory := slices.DeleteFunc(slices.Clone(all), func(h Hierarchy) bool { return h.Unified || h.Has("memory") })
	if len(unified) != 1 || len(noMemory) == 0 {
		t.Fatalf("this host is expected to be hybrid; hierarchies %+v", all)
	}
	m, err := newManager(unified, testParent(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	cg, err := m.Pod("unavailable")
	if err != nil {
		t.Fatal(err)
	}
	rootHas := strings.Fields(readFile(t, filepath.Join(unified[0].Mountpoint, "cgroup.controllers")))
	setters := map[string]func() error{
		"memory": func() error { return cg.SetMemoryLimit(1 << 30) },
		"cpu":    func() error { return cg.SetCPU(time.Millisecond, 0, 1024) },
		"pids":   func() error { return cg.SetPidsMax(10) },
	}
	for c, set := range setters {
		err := set()
		if slices.Contains(rootHas, c) {
			if err != nil {
				t.Errorf("%s is on cgroup2 here, yet: %v", c, err)
			}
			continue
		}
		var ce *ControllerError
		if !errors.Is(err, ErrControllerUnavailable) || !errors.As(err, &ce) || ce.Controller != c || !strings.Contains(ce.Reason, "cgroup2") {
			t.Errorf("%s: err = %v, want a ControllerError naming cgroup2", c, err)
		}
		if _, listed := m.Unavailable()[c]; !listed {
			t.Errorf("%s missing from Unavailable() = %v", c, m.Unavailable())
		}
	}

	m, err = newManager(noMemory, testParent(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if cg, err = m.Pod("nomemory"); err != nil {
		t.Fatal(err)
	}
	if _, err := cg.MemoryUsage(); !errors.Is(err, ErrControllerUnavailable) || !strings.Contains(err.Error(), "not mounted") {
		t.Errorf("MemoryUsage without a memory hierarchy: %v", err)
	}
	if err := cg.SetPidsMax(10); err != nil {
		t.Errorf("SetPidsMax with the pids hierarchy: %v", err)
	}
}

// TestSubtreeControlEnablement enables on cgroup2 a controller this host
// does give it (hugetlb, bound to no v1 hierarchy here) through the path
// pod limits take on a pure cgroup2 host, and sets a limit through it.
func TestSubtreeControlEnablement(t *testing.T) {
	mount, err := Mountpoint()
	if err != nil {
		t.Fatal(err)
	}
	rootFile := filepath.Join(mount, "cgroup.subtree_control")
	before := strings.Fields(readFile(t, rootFile))
	t.Cleanup(func() {
		// Give the root back as found (this runs after the test cgroups
		// are gone); EBUSY means someone else now relies on it.
		if !slices.Contains(before, "hugetlb") {
			os.WriteFile(rootFile, []byte("-hugetlb"), 0)
		}
	})
	m, err := NewManager(testParent(t), "hugetlb")
	if err != nil {
		t.Fatal(err)
	}
	if why, missing := m.Unavailable()["hugetlb"]; missing {
		t.Fatalf("hugetlb not enabled: %s", why)
	}
	cg, err := m.Pod("hugetlb")
	if err != nil {
		t.Fatal(err)
	}
	if err := cg.Set("hugetlb", "hugetlb.2MB.max", "4194304"); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(mount, cg.Path(), "hugetlb.2MB.max")); got != "4194304" {
		t.Fatalf("hugetlb.2MB.max = %q", got)
	}
	if got, err := cg.Get("hugetlb", "hugetlb.2MB.max"); err != nil || got != "4194304" {
		t.Fatalf("Get = %q, %v", got, err)
	}
}
