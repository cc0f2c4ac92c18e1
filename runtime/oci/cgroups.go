package oci

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// controllers is what runc will find when it places a container: on a
// machine with any cgroup v1 controller mounted (a hybrid layout included)
// runc uses v1 and only the v1 hierarchies count; on a pure cgroup2
// machine, the controllers enabled at the root.
type controllers struct {
	names map[string]bool
	swap  bool // a swap limit can be set (v1 swap accounting is on, or v2)

	// memoryRoot is where the memory controller's hierarchy is mounted
	// (the v1 memory mount or the cgroup2 mount), for reading OOM kill
	// counters after an exit.
	memoryRoot string
	v2         bool
}

func (c controllers) has(name string) bool { return c.names[name] }

// detectControllers reads mountinfo rather than assuming a layout, because
// edge machines come with all three (v1, hybrid, unified).
func detectControllers(mountinfo string) (controllers, error) {
	f, err := os.Open(mountinfo)
	if err != nil {
		return controllers{}, fmt.Errorf("read %s: %w", mountinfo, err)
	}
	defer f.Close()
	v1 := map[string]string{} // controller -> mount point
	var unified string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		// Fields after the " - " separator: fstype, source, super options.
		line := sc.Text()
		sep := strings.Index(line, " - ")
		if sep < 0 {
			continue
		}
		pre, post := strings.Fields(line[:sep]), strings.Fields(line[sep+3:])
		if len(pre) < 5 || len(post) < 3 {
			continue
		}
		switch post[0] {
		case "cgroup":
			for _, opt := range strings.Split(post[2], ",") {
				v1[opt] = pre[4]
			}
		case "cgroup2":
			if unified == "" {
				unified = pre[4]
			}
		}
	}
	if err := sc.Err(); err != nil {
		return controllers{}, fmt.Errorf("read %s: %w", mountinfo, err)
	}
	c := controllers{names: map[string]bool{}}
	if len(v1) > 0 {
		for _, name := range []string{"memory", "cpu", "pids", "cpuset", "blkio", "devices", "freezer"} {
			if _, ok := v1[name]; ok {
				c.names[name] = true
			}
		}
		if mp, ok := v1["memory"]; ok {
			c.memoryRoot = mp
			if _, err := os.Stat(filepath.Join(mp, "memory.memsw.limit_in_bytes")); err == nil {
				c.swap = true
			}
		}
		return c, nil
	}
	if unified != "" {
		data, err := os.ReadFile(filepath.Join(unified, "cgroup.controllers"))
		if err != nil {
			return controllers{}, fmt.Errorf("read cgroup2 controllers: %w", err)
		}
		for _, name := range strings.Fields(string(data)) {
			c.names[name] = true
		}
		// runc turns a v1-style swap limit equal to the memory limit into
		// memory.swap.max=0, so the same spec means "no swap" here too.
		c.swap = c.names["memory"]
		c.memoryRoot, c.v2 = unified, true
	}
	return c, nil
}

// oomKills reads how many processes of the container's cgroup the kernel's
// OOM killer has killed. The counter outlives the container's processes:
// the cgroup is removed only when the task is deleted, so an exited task
// still shows it. 0 when the cgroup or the counter is not there.
func (c controllers) oomKills(cgroupsPath string) int64 {
	if c.memoryRoot == "" || cgroupsPath == "" || strings.Contains(cgroupsPath, ":") {
		// "slice:prefix:name" is the systemd driver's form, whose path
		// this package does not derive.
		return 0
	}
	file := "memory.oom_control"
	if c.v2 {
		file = "memory.events"
	}
	data, err := os.ReadFile(filepath.Join(c.memoryRoot, filepath.Clean("/"+cgroupsPath), file))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && f[0] == "oom_kill" {
			var n int64
			fmt.Sscan(f[1], &n)
			return n
		}
	}
	return 0
}
