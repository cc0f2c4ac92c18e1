package e2e

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/moby/sys/mountinfo"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	"k8s.io/apimachinery/pkg/types"

	"github.com/wasmkube/wasmkube/sandbox/cgroups"
	"github.com/wasmkube/wasmkube/sandbox/network"
)

// leftover is something pods left on the machine, and how to remove it.
type leftover struct {
	what  string
	clean func() error
}

// cgroupRoot is the top of the agent's cgroups in every hierarchy.
const cgroupRoot = "wasmkube"

// leftovers lists what the pods uids hold on the machine. With all, it
// lists as well everything the node's data directory holds that no pod can
// be named for: each process and mount mentioning the directory, each netns
// pin and IP claim in it, each link on the node's bridge. The list is in
// the order its cleaners must run: processes before their mounts, mounts
// before the files under them, cgroups once their processes are gone.
func (n *Node) leftovers(uids []types.UID, all bool) []leftover {
	mentions := func(s string) bool {
		return all || slices.ContainsFunc(uids, func(uid types.UID) bool { return strings.Contains(s, string(uid)) })
	}
	var out []leftover
	out = append(out, n.leftoverProcesses(mentions)...)
	out = append(out, n.leftoverMounts(mentions)...)
	out = append(out, n.leftoverNetns(mentions)...)
	out = append(out, leftoverCgroups(uids)...)
	out = append(out, n.leftoverLinks(uids, all)...)
	out = append(out, n.leftoverClaims(mentions)...)
	if all {
		out = append(out, n.leftoverNodeCgroup()...)
	}
	return out
}

// leftoverNodeCgroup finds the node's parent of pod cgroups, which a
// stopping agent removes once its pods are gone.
func (n *Node) leftoverNodeCgroup() []leftover {
	hs, err := cgroups.Hierarchies()
	if err != nil {
		return []leftover{{what: "cgroup hierarchies unreadable: " + err.Error()}}
	}
	var out []leftover
	for _, h := range hs {
		dir := filepath.Join(h.Mountpoint, cgroupRoot, n.Name)
		if _, err := os.Stat(dir); err == nil {
			out = append(out, leftover{what: "node cgroup " + dir, clean: func() error { return removeCgroup(dir) }})
		}
	}
	return out
}

// leftoverProcesses finds processes other than `up` itself whose command
// line mentions the data directory: containerd shims (which name the
// node's containerd socket), runc, containerd.
func (n *Node) leftoverProcesses(mentions func(string) bool) []leftover {
	entries, _ := os.ReadDir("/proc")
	var out []leftover
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() || (n.Process != nil && pid == n.PID()) {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(b) == 0 {
			continue
		}
		cmdline := strings.Join(strings.Split(strings.TrimRight(string(b), "\x00"), "\x00"), " ")
		if !strings.Contains(cmdline, n.DataDir+"/") || !mentions(cmdline) {
			continue
		}
		kind := "process"
		if strings.Contains(strings.Fields(cmdline)[0], "containerd-shim") {
			kind = "containerd shim"
		}
		out = append(out, leftover{
			what:  fmt.Sprintf("%s %d: %s", kind, pid, cmdline),
			clean: func() error { return killAndWait(pid) },
		})
	}
	return out
}

// killAndWait sends SIGKILL to pid and waits for it to be gone. The
// processes it is used on are not the test's children: init reaps them.
func killAndWait(pid int) error {
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kill %d: %w", pid, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return nil
		}
		// The state follows the parenthesised command name.
		if i := strings.LastIndexByte(string(stat), ')'); i >= 0 && strings.HasPrefix(string(stat[i+1:]), " Z") {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("process %d still runs 5s after SIGKILL", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// leftoverMounts finds mounts under the data directory other than netns
// pins (leftoverNetns reports those): container root filesystems, volumes.
// Deeper mounts come first, so that unmounting goes inside out.
func (n *Node) leftoverMounts(mentions func(string) bool) []leftover {
	netnsDir := filepath.Join(n.DataDir, "netns") + "/"
	var mps []string
	for _, mp := range mountpointsUnder(n.DataDir) {
		if !strings.HasPrefix(mp, netnsDir) && mentions(mp) {
			mps = append(mps, mp)
		}
	}
	slices.SortFunc(mps, func(a, b string) int { return len(b) - len(a) })
	out := make([]leftover, 0, len(mps))
	for _, mp := range mps {
		out = append(out, leftover{what: "mount " + mp, clean: func() error { return detach(mp) }})
	}
	return out
}

// leftoverNetns finds pinned network namespaces of pods.
func (n *Node) leftoverNetns(mentions func(string) bool) []leftover {
	dir := filepath.Join(n.DataDir, "netns")
	entries, _ := os.ReadDir(dir)
	mounted := mountpointsUnder(dir)
	var out []leftover
	for _, e := range entries {
		if !mentions(e.Name()) {
			continue
		}
		path := filepath.Join(dir, e.Name())
		what := "netns pin " + path
		if slices.Contains(mounted, path) {
			what += " (still mounted)"
		}
		out = append(out, leftover{what: what, clean: func() error {
			if err := detach(path); err != nil && !errors.Is(err, unix.EINVAL) {
				return err
			}
			return os.Remove(path)
		}})
	}
	return out
}

func detach(mp string) error {
	if err := unix.Unmount(mp, unix.MNT_DETACH); err != nil {
		return fmt.Errorf("unmount %s: %w", mp, err)
	}
	return nil
}

// mountpointsUnder lists the mount points below dir in the test's mount
// namespace, which the agent shares.
func mountpointsUnder(dir string) []string {
	ms, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	if err != nil {
		return []string{"(mounts unreadable: " + err.Error() + ")"}
	}
	out := make([]string, 0, len(ms))
	for _, m := range ms {
		if m.Mountpoint != dir {
			out = append(out, m.Mountpoint)
		}
	}
	return out
}

// leftoverCgroups finds the cgroups (pod<uid>) of the pods under
// /wasmkube in every mounted hierarchy.
func leftoverCgroups(uids []types.UID) []leftover {
	hs, err := cgroups.Hierarchies()
	if err != nil {
		return []leftover{{what: "cgroup hierarchies unreadable: " + err.Error()}}
	}
	names := map[string]bool{}
	for _, uid := range uids {
		names["pod"+string(uid)] = true
	}
	var out []leftover
	for _, h := range hs {
		_ = filepath.WalkDir(filepath.Join(h.Mountpoint, cgroupRoot), func(path string, d fs.DirEntry, err error) error {
			if err != nil || !d.IsDir() || !names[d.Name()] {
				return nil
			}
			out = append(out, leftover{what: "cgroup " + path, clean: func() error { return removeCgroup(path) }})
			return filepath.SkipDir
		})
	}
	return out
}

// removeCgroup kills what still runs in a cgroup tree and removes it,
// innermost first.
func removeCgroup(dir string) error {
	var dirs []string
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, path)
		}
		return nil
	})
	for _, d := range dirs {
		b, _ := os.ReadFile(filepath.Join(d, "cgroup.procs"))
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				_ = killAndWait(pid)
			}
		}
	}
	slices.Reverse(dirs)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, d := range dirs {
		for {
			err := unix.Rmdir(d)
			if err == nil || errors.Is(err, unix.ENOENT) {
				break
			}
			if ctx.Err() != nil {
				return fmt.Errorf("rmdir %s: %w", d, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return nil
}

// leftoverLinks finds the host veths of the pods; with all, also every
// link still enslaved to the node's bridge.
func (n *Node) leftoverLinks(uids []types.UID, all bool) []leftover {
	links, err := netlink.LinkList()
	if err != nil {
		return []leftover{{what: "links unreadable: " + err.Error()}}
	}
	veths := map[string]bool{}
	for _, uid := range uids {
		veths[network.HostVethName(string(uid))] = true
	}
	bridge := 0
	if ifc, err := net.InterfaceByName(n.Bridge); err == nil {
		bridge = ifc.Index
	}
	var out []leftover
	for _, l := range links {
		a := l.Attrs()
		if !veths[a.Name] && !(all && bridge != 0 && a.MasterIndex == bridge) {
			continue
		}
		out = append(out, leftover{
			what:  fmt.Sprintf("link %s (%s, on bridge %s: %t)", a.Name, l.Type(), n.Bridge, bridge != 0 && a.MasterIndex == bridge),
			clean: func() error { return netlink.LinkDel(l) },
		})
	}
	return out
}

// leftoverClaims finds IP claims (one file per address, holding its owner)
// in the agent's allocator directory.
func (n *Node) leftoverClaims(mentions func(string) bool) []leftover {
	dir := filepath.Join(n.DataDir, "ipam")
	entries, _ := os.ReadDir(dir)
	var out []leftover
	for _, e := range entries {
		if net.ParseIP(e.Name()) == nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		owner := strings.TrimSpace(string(b))
		if err != nil || !mentions(owner) {
			continue
		}
		// The claim is only a file in the data directory: nothing to
		// clean, but an address the node would never hand out again.
		out = append(out, leftover{what: fmt.Sprintf("IP claim %s of %s", e.Name(), owner)})
	}
	return out
}

// deleteBridge removes the bridge name and reports whether there was one;
// a link of another type under the name is refused.
func deleteBridge(name string) (bool, error) {
	l, err := netlink.LinkByName(name)
	var notFound netlink.LinkNotFoundError
	if errors.As(err, &notFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if l.Type() != "bridge" {
		return false, fmt.Errorf("%s is a %s, not the node's bridge", name, l.Type())
	}
	return true, netlink.LinkDel(l)
}
