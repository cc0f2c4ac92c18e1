package cgroups

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ErrControllerUnavailable is matched (errors.Is) by the error of a setter
// whose controller the pod cgroup cannot use.
var ErrControllerUnavailable = errors.New("cgroup controller unavailable")

// ControllerError says which controller is missing where, and why.
type ControllerError struct {
	Controller string
	Cgroup     string
	Reason     string
}

func (e *ControllerError) Error() string {
	return fmt.Sprintf("cgroups: controller %q unavailable for %s: %s", e.Controller, e.Cgroup, e.Reason)
}

func (e *ControllerError) Is(target error) bool { return target == ErrControllerUnavailable }

// DefaultControllers are the ones pod limits need.
func DefaultControllers() []string { return []string{"cpu", "memory", "pids"} }

// Mountpoint returns where the cgroup2 hierarchy is mounted, as listed in
// /proc/self/mountinfo.
func Mountpoint() (string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", fmt.Errorf("cgroups: %w", err)
	}
	defer f.Close()
	return parseMountinfo(f)
}

func parseMountinfo(r io.Reader) (string, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		// Optional fields make the column count vary; " - " separates them
		// from the filesystem type.
		left, right, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		lf, rf := strings.Fields(left), strings.Fields(right)
		if len(lf) < 5 || len(rf) < 1 || rf[0] != "cgroup2" {
			continue
		}
		return unescapeMount(lf[4]), nil
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("cgroups: read mountinfo: %w", err)
	}
	return "", errors.New("cgroups: no cgroup2 mount in /proc/self/mountinfo")
}

// unescapeMount undoes the octal escapes (\040 for space) of mountinfo.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// Manager creates pod cgroups under one parent cgroup.
type Manager struct {
	mount       string
	parent      string // absolute path of the parent cgroup
	controllers []string
	// unavailable records, per wanted controller that could not be enabled
	// for the pods, the reason; setters report it.
	unavailable map[string]string
}

// NewManager prepares parent (relative to the cgroup2 root, for example
// "wasmkube") and enables the wanted controllers (DefaultControllers when
// none are given) down to it. A controller that cannot be enabled is not an
// error here: it is recorded and reported by the setters that need it.
func NewManager(parent string, controllers ...string) (*Manager, error) {
	mount, err := Mountpoint()
	if err != nil {
		return nil, err
	}
	return newManager(mount, parent, controllers)
}

func newManager(mount, parent string, controllers []string) (*Manager, error) {
	rel := filepath.Clean("/" + parent)
	if rel == "/" {
		return nil, errors.New("cgroups: parent must not be the cgroup2 root")
	}
	if len(controllers) == 0 {
		controllers = DefaultControllers()
	}
	m := &Manager{
		mount:       mount,
		parent:      filepath.Join(mount, rel),
		controllers: controllers,
		unavailable: map[string]string{},
	}
	if err := os.MkdirAll(m.parent, 0o755); err != nil {
		return nil, fmt.Errorf("cgroups: create parent %s: %w", m.parent, err)
	}
	rootHas, err := readList(filepath.Join(mount, "cgroup.controllers"))
	if err != nil {
		return nil, err
	}
	for _, c := range controllers {
		if !slices.Contains(rootHas, c) {
			m.unavailable[c] = notOnHierarchy(mount, rootHas)
			continue
		}
		if err := m.enable(c); err != nil {
			m.unavailable[c] = err.Error()
		}
	}
	return m, nil
}

// enable writes +c into cgroup.subtree_control of the root and of every
// cgroup between it and the parent, so pod cgroups get the controller.
func (m *Manager) enable(c string) error {
	rel, err := filepath.Rel(m.mount, m.parent)
	if err != nil {
		return fmt.Errorf("cgroups: %w", err)
	}
	dir := m.mount
	steps := append([]string{""}, strings.Split(rel, string(filepath.Separator))...)
	for _, step := range steps {
		dir = filepath.Join(dir, step)
		file := filepath.Join(dir, "cgroup.subtree_control")
		have, err := readList(file)
		if err != nil {
			return err
		}
		if slices.Contains(have, c) {
			continue
		}
		if err := os.WriteFile(file, []byte("+"+c), 0); err != nil {
			// EBUSY here means processes sit directly in dir: cgroup2 lets a
			// non-root cgroup either hold processes or delegate controllers.
			return fmt.Errorf("enable in %s: %w", file, err)
		}
	}
	return nil
}

func notOnHierarchy(mount string, rootHas []string) string {
	return fmt.Sprintf("not attached to the cgroup2 hierarchy at %s (its root offers %q); "+
		"on a hybrid node it is bound to a cgroup v1 hierarchy", mount, rootHas)
}

// Unavailable reports the wanted controllers pod cgroups cannot use, with
// the reason for each, so that node status can say which limits hold.
func (m *Manager) Unavailable() map[string]string {
	out := make(map[string]string, len(m.unavailable))
	for k, v := range m.unavailable {
		out[k] = v
	}
	return out
}

// Parent is the absolute path of the cgroup that holds the pod cgroups.
func (m *Manager) Parent() string { return m.parent }

// Pod creates (or opens, on agent restart) the cgroup of pod uid.
func (m *Manager) Pod(uid string) (*Cgroup, error) {
	if uid == "" || uid == "." || uid == ".." || strings.ContainsAny(uid, "/\x00") {
		return nil, fmt.Errorf("cgroups: invalid pod uid %q", uid)
	}
	path := filepath.Join(m.parent, "pod"+uid)
	if err := os.Mkdir(path, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("cgroups: create %s: %w", path, err)
	}
	return &Cgroup{path: path, mount: m.mount, unavailable: m.unavailable}, nil
}

// Cgroup is one pod's cgroup.
type Cgroup struct {
	path        string
	mount       string
	unavailable map[string]string
}

// Path is the cgroup's directory; open it for clone3's CLONE_INTO_CGROUP
// (SysProcAttr.UseCgroupFD) to start the wasm host directly inside.
func (c *Cgroup) Path() string { return c.path }

// SetMemoryMax sets memory.max; limit <= 0 removes the limit.
func (c *Cgroup) SetMemoryMax(limit int64) error {
	v := "max"
	if limit > 0 {
		v = strconv.FormatInt(limit, 10)
	}
	return c.set("memory", "memory.max", v)
}

// SetCPUMax sets cpu.max to quota per period; quota <= 0 removes the limit.
// The kernel accepts periods from 1ms to 1s.
func (c *Cgroup) SetCPUMax(quota, period time.Duration) error {
	if period < time.Millisecond || period > time.Second {
		return fmt.Errorf("cgroups: %s: cpu period %s outside 1ms..1s", c.path, period)
	}
	q := "max"
	if quota > 0 {
		q = strconv.FormatInt(quota.Microseconds(), 10)
	}
	return c.set("cpu", "cpu.max", q+" "+strconv.FormatInt(period.Microseconds(), 10))
}

// SetPidsMax sets pids.max; limit <= 0 removes the limit.
func (c *Cgroup) SetPidsMax(limit int64) error {
	v := "max"
	if limit > 0 {
		v = strconv.FormatInt(limit, 10)
	}
	return c.set("pids", "pids.max", v)
}

// Set writes value to the interface file name of controller, for limits
// without a typed setter.
func (c *Cgroup) Set(controller, name, value string) error {
	return c.set(controller, name, value)
}

// Get reads an interface file, trimmed.
func (c *Cgroup) Get(name string) (string, error) {
	data, err := os.ReadFile(filepath.Join(c.path, name))
	if err != nil {
		return "", fmt.Errorf("cgroups: read %s: %w", filepath.Join(c.path, name), err)
	}
	return strings.TrimSpace(string(data)), nil
}

func (c *Cgroup) set(controller, name, value string) error {
	have, err := readList(filepath.Join(c.path, "cgroup.controllers"))
	if err != nil {
		return err
	}
	if !slices.Contains(have, controller) {
		reason := c.unavailable[controller]
		if reason == "" {
			reason = fmt.Sprintf("not enabled in the parent's cgroup.subtree_control (pod cgroup has %q)", have)
			if rootHas, err := readList(filepath.Join(c.mount, "cgroup.controllers")); err == nil && !slices.Contains(rootHas, controller) {
				reason = notOnHierarchy(c.mount, rootHas)
			}
		}
		return &ControllerError{Controller: controller, Cgroup: c.path, Reason: reason}
	}
	file := filepath.Join(c.path, name)
	if err := os.WriteFile(file, []byte(value), 0); err != nil {
		return fmt.Errorf("cgroups: write %q to %s: %w", value, file, err)
	}
	return nil
}

// Add moves pid into the cgroup.
func (c *Cgroup) Add(pid int) error {
	file := filepath.Join(c.path, "cgroup.procs")
	if err := os.WriteFile(file, []byte(strconv.Itoa(pid)), 0); err != nil {
		return fmt.Errorf("cgroups: add pid %d to %s: %w", pid, c.path, err)
	}
	return nil
}

// Procs lists the processes in the cgroup.
func (c *Cgroup) Procs() ([]int, error) {
	lines, err := readList(filepath.Join(c.path, "cgroup.procs"))
	if err != nil {
		return nil, err
	}
	pids := make([]int, 0, len(lines))
	for _, l := range lines {
		pid, err := strconv.Atoi(l)
		if err != nil {
			return nil, fmt.Errorf("cgroups: %s: bad pid %q", c.path, l)
		}
		pids = append(pids, pid)
	}
	return pids, nil
}

// Remove kills whatever still runs in the cgroup and removes it. A pod
// being removed has already stopped its containers, so leftovers are leaks
// that must not survive into another pod's accounting. Removing a cgroup
// that is already gone is not an error.
func (c *Cgroup) Remove(ctx context.Context) error {
	if _, err := os.Stat(c.path); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	// cgroup.kill (Linux 5.14) kills atomically, also processes forking
	// while we look; without it, signal each process until none is left.
	killFile := filepath.Join(c.path, "cgroup.kill")
	useKillFile := true
	if err := os.WriteFile(killFile, []byte("1"), 0); err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("cgroups: kill %s: %w", c.path, err)
		}
		useKillFile = false
	}
	for {
		pids, err := c.Procs()
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if len(pids) == 0 {
			break
		}
		if !useKillFile {
			for _, pid := range pids {
				if err := unix.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, unix.ESRCH) {
					return fmt.Errorf("cgroups: kill pid %d in %s: %w", pid, c.path, err)
				}
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cgroups: %s still holds pids %v: %w", c.path, pids, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
	for {
		err := unix.Rmdir(c.path)
		if err == nil || errors.Is(err, unix.ENOENT) {
			return nil
		}
		// The kernel may report EBUSY briefly after the last process left.
		if !errors.Is(err, unix.EBUSY) {
			return fmt.Errorf("cgroups: remove %s: %w", c.path, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cgroups: remove %s: %w (%w)", c.path, err, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func readList(file string) ([]string, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("cgroups: read %s: %w", file, err)
	}
	return strings.Fields(string(data)), nil
}
