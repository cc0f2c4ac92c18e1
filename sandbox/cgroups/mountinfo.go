package cgroups

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
)

// Hierarchy is one mounted cgroup hierarchy that pod cgroups are made in.
type Hierarchy struct {
	// Mountpoint is where the hierarchy's root is mounted.
	Mountpoint string
	// Controllers lists the controllers bound to a v1 hierarchy, a named
	// hierarchy as "name=<name>" (for example "name=systemd"). Empty for
	// cgroup2, whose controllers are read from its cgroup.controllers.
	Controllers []string
	// Unified is true for the cgroup2 hierarchy.
	Unified bool
}

// Has reports whether controller is bound to this v1 hierarchy.
func (h Hierarchy) Has(controller string) bool { return slices.Contains(h.Controllers, controller) }

// Hierarchies lists the cgroup hierarchies runc places containers in, as
// read from /proc/self/mountinfo: every v1 hierarchy (named ones included,
// since runc joins those too) and the cgroup2 one, last. On a pure cgroup2
// host that is the cgroup2 hierarchy alone.
func Hierarchies() ([]Hierarchy, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("cgroups: %w", err)
	}
	defer f.Close()
	return parseMountinfo(f)
}

// Mountpoint returns where the cgroup2 hierarchy is mounted.
func Mountpoint() (string, error) {
	hs, err := Hierarchies()
	if err != nil {
		return "", err
	}
	if i := slices.IndexFunc(hs, func(h Hierarchy) bool { return h.Unified }); i >= 0 {
		return hs[i].Mountpoint, nil
	}
	return "", errors.New("cgroups: no cgroup2 mount in /proc/self/mountinfo")
}

// v1Options are the super options of a v1 cgroup mount that are not
// controllers. Options of the form key=value other than name= are skipped
// as well (release_agent=...).
var v1Options = []string{"rw", "ro", "none", "xattr", "noprefix", "clone_children", "cpuset_v2_mode", "favordynmods"}

func parseMountinfo(r io.Reader) ([]Hierarchy, error) {
	var (
		v1      []Hierarchy
		unified *Hierarchy
		devices = map[string]int{}  // major:minor -> index in v1
		roots   = map[string]bool{} // major:minor -> a mount of its root
	)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		// Optional fields make the column count vary; " - " separates them
		// from the filesystem type, source and super options.
		left, right, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		lf, rf := strings.Fields(left), strings.Fields(right)
		if len(lf) < 5 || len(rf) < 1 {
			continue
		}
		mount := unescapeMount(lf[4])
		switch {
		case rf[0] == "cgroup2" && unified == nil:
			unified = &Hierarchy{Mountpoint: mount, Unified: true}
		case rf[0] == "cgroup" && len(rf) >= 3:
			// A hierarchy mounted twice (bind mounts, or cpu and cpuacct
			// reachable under both names) is one hierarchy: the device
			// number identifies it. A mount of its root is preferred to
			// one of a subtree (field 4 names the mounted directory), as
			// cgroup paths are relative to the root.
			h := Hierarchy{Mountpoint: mount, Controllers: v1Controllers(rf[2])}
			if i, seen := devices[lf[2]]; seen {
				if lf[3] == "/" && !roots[lf[2]] {
					v1[i], roots[lf[2]] = h, true
				}
				continue
			}
			devices[lf[2]], roots[lf[2]] = len(v1), lf[3] == "/"
			v1 = append(v1, h)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("cgroups: read mountinfo: %w", err)
	}
	if unified != nil {
		v1 = append(v1, *unified)
	}
	if len(v1) == 0 {
		return nil, errors.New("cgroups: no cgroup mount in mountinfo")
	}
	return v1, nil
}

func v1Controllers(superOptions string) []string {
	var out []string
	for _, opt := range strings.Split(superOptions, ",") {
		if slices.Contains(v1Options, opt) || (strings.Contains(opt, "=") && !strings.HasPrefix(opt, "name=")) {
			continue
		}
		out = append(out, opt)
	}
	return out
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
