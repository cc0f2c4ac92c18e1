package cgroups

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

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

// Manager creates pod cgroups under one parent cgroup, in every hierarchy.
type Manager struct {
	parent      string // hierarchy-relative, for example /wasmkube/pods
	hierarchies []Hierarchy
	// unavailable records, per wanted controller that no hierarchy gives
	// the pods, the reason; setters report it.
	unavailable map[string]string
}

// NewManager prepares parent (a hierarchy-relative path such as
// "/wasmkube/pods") in every hierarchy of this host (see Hierarchies). Each
// wanted controller (DefaultControllers when none are given) is used on the
// v1 hierarchy it is bound to; one that no v1 hierarchy has is enabled on
// cgroup2 down to parent. A controller found nowhere is not an error here:
// it is recorded (Unavailable) and reported by the setters that need it.
func NewManager(parent string, controllers ...string) (*Manager, error) {
	hs, err := Hierarchies()
	if err != nil {
		return nil, err
	}
	return newManager(hs, parent, controllers)
}

func newManager(hs []Hierarchy, parent string, controllers []string) (*Manager, error) {
	rel := path.Clean("/" + parent)
	if rel == "/" {
		return nil, errors.New("cgroups: parent must not be the hierarchy root")
	}
	if len(controllers) == 0 {
		controllers = DefaultControllers()
	}
	m := &Manager{parent: rel, hierarchies: hs, unavailable: map[string]string{}}
	for _, h := range hs {
		if err := ensureDir(h, rel); err != nil {
			return nil, err
		}
	}
	for _, c := range controllers {
		if slices.ContainsFunc(hs, func(h Hierarchy) bool { return h.Has(c) }) {
			continue
		}
		i := slices.IndexFunc(hs, func(h Hierarchy) bool { return h.Unified })
		if i < 0 {
			m.unavailable[c] = "not mounted in any cgroup hierarchy"
			continue
		}
		if err := enable(hs[i].Mountpoint, rel, c); err != nil {
			m.unavailable[c] = err.Error()
		}
	}
	return m, nil
}

// enable writes +c into cgroup.subtree_control of the cgroup2 root and of
// every cgroup down to rel, which cgroup2 requires before rel's children
// can use c.
func enable(mount, rel, c string) error {
	rootHas, err := readList(filepath.Join(mount, "cgroup.controllers"))
	if err != nil {
		return err
	}
	if !slices.Contains(rootHas, c) {
		return fmt.Errorf("on no v1 hierarchy, and not attached to the cgroup2 hierarchy at %s (its root offers %q)", mount, rootHas)
	}
	dir := mount
	for _, step := range append([]string{""}, strings.Split(strings.TrimPrefix(rel, "/"), "/")...) {
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

// ensureDir creates rel and its ancestors in h. A new v1 cpuset cgroup
// starts with no CPUs and no memory nodes, and a process cannot join it
// until they are set, so each level inherits its parent's.
func ensureDir(h Hierarchy, rel string) error {
	dir := h.Mountpoint
	for _, step := range strings.Split(strings.TrimPrefix(rel, "/"), "/") {
		parent := dir
		dir = filepath.Join(dir, step)
		if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("cgroups: create %s: %w", dir, err)
		}
		if !h.Has("cpuset") {
			continue
		}
		for _, file := range []string{"cpuset.cpus", "cpuset.mems"} {
			if err := inherit(parent, dir, file); err != nil {
				return err
			}
		}
	}
	return nil
}

func inherit(parent, dir, file string) error {
	own, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil || strings.TrimSpace(string(own)) != "" {
		return nil // not a cpuset with this file, or already set
	}
	value, err := os.ReadFile(filepath.Join(parent, file))
	if err != nil {
		return fmt.Errorf("cgroups: read %s: %w", filepath.Join(parent, file), err)
	}
	if err := os.WriteFile(filepath.Join(dir, file), value, 0); err != nil {
		return fmt.Errorf("cgroups: write %s: %w", filepath.Join(dir, file), err)
	}
	return nil
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

// Parent is the hierarchy-relative path of the cgroup holding the pods.
func (m *Manager) Parent() string { return m.parent }

// Hierarchies lists the hierarchies the manager makes cgroups in.
func (m *Manager) Hierarchies() []Hierarchy { return slices.Clone(m.hierarchies) }

// Pod creates (or opens, on agent restart) the cgroup of pod uid in every
// hierarchy.
func (m *Manager) Pod(uid string) (*Cgroup, error) {
	c, err := m.Open(uid)
	if err != nil {
		return nil, err
	}
	for _, h := range m.hierarchies {
		if err := ensureDir(h, c.path); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// Open returns the cgroup of pod uid without creating it, for removing
// what may or may not be there.
func (m *Manager) Open(uid string) (*Cgroup, error) {
	if uid == "" || uid == "." || uid == ".." || strings.ContainsAny(uid, "/\x00") {
		return nil, fmt.Errorf("cgroups: invalid pod uid %q", uid)
	}
	return &Cgroup{path: path.Join(m.parent, "pod"+uid), hierarchies: m.hierarchies, unavailable: m.unavailable}, nil
}

// Pods lists the uids of the pods that have a cgroup under the parent in
// any hierarchy, sorted, so that the agent can remove the cgroups of pods
// it no longer runs after a restart.
func (m *Manager) Pods() ([]string, error) {
	var uids []string
	for _, h := range m.hierarchies {
		dir := filepath.Join(h.Mountpoint, m.parent)
		entries, err := os.ReadDir(dir)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("cgroups: list %s: %w", dir, err)
		}
		for _, e := range entries {
			if uid, ok := strings.CutPrefix(e.Name(), "pod"); ok && e.IsDir() && uid != "" {
				uids = append(uids, uid)
			}
		}
	}
	slices.Sort(uids)
	return slices.Compact(uids), nil
}

// Cgroup is one pod's cgroup, a directory in every hierarchy.
type Cgroup struct {
	path        string
	hierarchies []Hierarchy
	unavailable map[string]string
}

// ForPath is the cgroup at the hierarchy-relative path rel in the
// hierarchies hs, for one made elsewhere (a pod's, by its Manager); nothing
// is created.
func ForPath(hs []Hierarchy, rel string) *Cgroup {
	return &Cgroup{path: path.Clean("/" + rel), hierarchies: hs, unavailable: map[string]string{}}
}

// Sub creates (or opens) the cgroup name below c in every hierarchy: a
// leaf for processes of the pod that are no container's, since cgroup2
// lets a cgroup that delegates controllers hold no process itself.
func (c *Cgroup) Sub(name string) (*Cgroup, error) {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") {
		return nil, fmt.Errorf("cgroups: invalid cgroup name %q", name)
	}
	sub := &Cgroup{path: path.Join(c.path, name), hierarchies: c.hierarchies, unavailable: c.unavailable}
	for _, h := range c.hierarchies {
		if err := ensureDir(h, sub.path); err != nil {
			return nil, err
		}
	}
	return sub, nil
}

// Path is the hierarchy-relative path of the cgroup, the same in every
// hierarchy: the CgroupParent of the pod's containers.
func (c *Cgroup) Path() string { return c.path }

// Dirs lists the cgroup's directory in every hierarchy, cgroup2 last.
func (c *Cgroup) Dirs() []string {
	dirs := make([]string, len(c.hierarchies))
	for i, h := range c.hierarchies {
		dirs[i] = c.dir(h)
	}
	return dirs
}

// UnifiedDir is the cgroup's directory on the cgroup2 hierarchy, if the
// host has one: what clone3's CLONE_INTO_CGROUP takes.
func (c *Cgroup) UnifiedDir() (string, bool) {
	for _, h := range c.hierarchies {
		if h.Unified {
			return c.dir(h), true
		}
	}
	return "", false
}

func (c *Cgroup) dir(h Hierarchy) string { return filepath.Join(h.Mountpoint, c.path) }

// Add moves pid into the cgroup in every hierarchy. On cgroup2 a cgroup
// holding processes cannot enable controllers for its children, so a pod
// whose containers need their own limits there keeps its processes in a
// child cgroup instead.
func (c *Cgroup) Add(pid int) error {
	for _, h := range c.hierarchies {
		file := filepath.Join(c.dir(h), "cgroup.procs")
		if err := os.WriteFile(file, []byte(strconv.Itoa(pid)), 0); err != nil {
			return fmt.Errorf("cgroups: add pid %d to %s: %w", pid, file, err)
		}
	}
	return nil
}

// Procs lists the processes in the cgroup or any cgroup below it, in any
// hierarchy, sorted.
func (c *Cgroup) Procs() ([]int, error) {
	var pids []int
	for _, h := range c.hierarchies {
		err := filepath.WalkDir(c.dir(h), func(dir string, d fs.DirEntry, err error) error {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed while we walk
			}
			if err != nil {
				return fmt.Errorf("cgroups: %w", err)
			}
			if !d.IsDir() {
				return nil
			}
			lines, err := readList(filepath.Join(dir, "cgroup.procs"))
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			if err != nil {
				return err
			}
			for _, l := range lines {
				pid, err := strconv.Atoi(l)
				if err != nil {
					return fmt.Errorf("cgroups: %s: bad pid %q", dir, l)
				}
				pids = append(pids, pid)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	slices.Sort(pids)
	return slices.Compact(pids), nil
}

func readList(file string) ([]string, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("cgroups: read %s: %w", file, err)
	}
	return strings.Fields(string(data)), nil
}

// Release removes the parent cgroup where it holds no pod cgroups any
// more, so a node that is shut down empty leaves nothing behind. A parent
// that still holds pods stays: their containers outlive the agent.
func (m *Manager) Release() error {
	var errs []error
	for _, h := range m.hierarchies {
		dir := filepath.Join(h.Mountpoint, m.parent)
		err := os.Remove(dir)
		if err == nil || errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ENOTEMPTY) || errors.Is(err, unix.EBUSY) {
			continue
		}
		errs = append(errs, fmt.Errorf("cgroups: remove %s: %w", dir, err))
	}
	return errors.Join(errs...)
}
