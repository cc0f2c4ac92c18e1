package cgroups

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// DefaultCPUPeriod is the CFS period used when SetCPU is given none, the
// kernel's and kubelet's default.
const DefaultCPUPeriod = 100 * time.Millisecond

// SetMemoryLimit limits the pod's memory (v1 memory.limit_in_bytes, v2
// memory.max); limit <= 0 removes the limit.
func (c *Cgroup) SetMemoryLimit(limit int64) error {
	dir, unified, err := c.target("memory")
	if err != nil {
		return err
	}
	if unified {
		return write(dir, "memory.max", maxOr(limit, "max"))
	}
	return write(dir, "memory.limit_in_bytes", maxOr(limit, "-1"))
}

// SetCPU sets the pod's CFS bandwidth, quota per period (quota <= 0: no
// limit; period 0: DefaultCPUPeriod; the kernel accepts 1ms to 1s), and its
// share of contended CPU time as kubelet computes it from requests (v1
// cpu.shares; on cgroup2 cpu.weight, converted as runc converts it).
// shares 0 leaves the share unchanged.
func (c *Cgroup) SetCPU(quota, period time.Duration, shares uint64) error {
	if period == 0 {
		period = DefaultCPUPeriod
	}
	if period < time.Millisecond || period > time.Second {
		return fmt.Errorf("cgroups: %s: cpu period %s outside 1ms..1s", c.path, period)
	}
	dir, unified, err := c.target("cpu")
	if err != nil {
		return err
	}
	p := strconv.FormatInt(period.Microseconds(), 10)
	if unified {
		if err := write(dir, "cpu.max", maxOr(quota.Microseconds(), "max")+" "+p); err != nil {
			return err
		}
		if shares == 0 {
			return nil
		}
		return write(dir, "cpu.weight", strconv.FormatUint(sharesToWeight(shares), 10))
	}
	if err := setCFS(dir, maxOr(quota.Microseconds(), "-1"), p); err != nil {
		return err
	}
	if shares == 0 {
		return nil
	}
	return write(dir, "cpu.shares", strconv.FormatUint(shares, 10))
}

// setCFS writes the period first, as the kernel checks each write against
// the other value: a shorter period can be refused (EINVAL) while the old
// quota still exceeds what the parent allows per period, and is then
// written again after the quota.
func setCFS(dir, quota, period string) error {
	periodErr := write(dir, "cpu.cfs_period_us", period)
	if periodErr != nil && !errors.Is(periodErr, unix.EINVAL) {
		return periodErr
	}
	if err := write(dir, "cpu.cfs_quota_us", quota); err != nil {
		return err
	}
	if periodErr != nil {
		return write(dir, "cpu.cfs_period_us", period)
	}
	return nil
}

// sharesToWeight maps cpu.shares (2..262144) onto cpu.weight (1..10000)
// linearly, the conversion runc applies to a container's shares on cgroup2,
// so a pod and its containers are weighed alike.
func sharesToWeight(shares uint64) uint64 {
	shares = min(max(shares, 2), 262144)
	return 1 + ((shares-2)*9999)/262142
}

// SetPidsMax limits the number of tasks in the pod (pids.max); limit <= 0
// removes the limit.
func (c *Cgroup) SetPidsMax(limit int64) error {
	dir, _, err := c.target("pids")
	if err != nil {
		return err
	}
	return write(dir, "pids.max", maxOr(limit, "max"))
}

// MemoryUsage is the memory charged to the pod now, in bytes (v1
// memory.usage_in_bytes, v2 memory.current), for per-pod accounting.
func (c *Cgroup) MemoryUsage() (int64, error) {
	dir, unified, err := c.target("memory")
	if err != nil {
		return 0, err
	}
	name := "memory.usage_in_bytes"
	if unified {
		name = "memory.current"
	}
	v, err := read(dir, name)
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("cgroups: %s: %w", filepath.Join(dir, name), err)
	}
	return n, nil
}

// Set writes value to the interface file name in the hierarchy that gives
// the pod controller, for limits without a typed setter. The file name is
// the caller's to choose for that hierarchy's version.
func (c *Cgroup) Set(controller, name, value string) error {
	dir, _, err := c.target(controller)
	if err != nil {
		return err
	}
	return write(dir, name, value)
}

// Get reads the interface file name of controller, trimmed.
func (c *Cgroup) Get(controller, name string) (string, error) {
	dir, _, err := c.target(controller)
	if err != nil {
		return "", err
	}
	return read(dir, name)
}

// target finds the pod's directory in the hierarchy that gives it
// controller: the v1 hierarchy it is bound to, which is where runc applies
// the containers' limits too, or else cgroup2 when it is enabled there.
func (c *Cgroup) target(controller string) (dir string, unified bool, err error) {
	for _, h := range c.hierarchies {
		if h.Has(controller) {
			return c.dir(h), false, nil
		}
	}
	reason := "not mounted in any cgroup hierarchy"
	for _, h := range c.hierarchies {
		if !h.Unified {
			continue
		}
		have, err := readList(filepath.Join(c.dir(h), "cgroup.controllers"))
		if err != nil {
			return "", false, err
		}
		if slices.Contains(have, controller) {
			return c.dir(h), true, nil
		}
		reason = fmt.Sprintf("on no v1 hierarchy, and not enabled for the pod on cgroup2 (it has %q)", have)
	}
	if r := c.unavailable[controller]; r != "" {
		reason = r
	}
	return "", false, &ControllerError{Controller: controller, Cgroup: c.path, Reason: reason}
}

// maxOr formats a limit, or unlimited when it is not positive.
func maxOr(limit int64, unlimited string) string {
	if limit <= 0 {
		return unlimited
	}
	return strconv.FormatInt(limit, 10)
}

func write(dir, name, value string) error {
	file := filepath.Join(dir, name)
	if err := os.WriteFile(file, []byte(value), 0); err != nil {
		return fmt.Errorf("cgroups: write %q to %s: %w", value, file, err)
	}
	return nil
}

func read(dir, name string) (string, error) {
	file := filepath.Join(dir, name)
	data, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("cgroups: read %s: %w", file, err)
	}
	return strings.TrimSpace(string(data)), nil
}
