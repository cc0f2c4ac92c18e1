package lb

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/wasmkube/wasmkube/sandbox/cgroups"
	"golang.org/x/sys/unix"
)

// hooks are the socket programs and where they attach.
func (d *Datapath) hooks() []struct {
	name   string
	attach ebpf.AttachType
	prog   *ebpf.Program
} {
	p := d.objs.sockPrograms
	return []struct {
		name   string
		attach ebpf.AttachType
		prog   *ebpf.Program
	}{
		{"connect4", ebpf.AttachCGroupInet4Connect, p.LbConnect4},
		{"sendmsg4", ebpf.AttachCGroupUDP4Sendmsg, p.LbSendmsg4},
		{"recvmsg4", ebpf.AttachCGroupUDP4Recvmsg, p.LbRecvmsg4},
		{"getpeername4", ebpf.AttachCgroupInet4GetPeername, p.LbGetpeername4},
	}
}

// AttachCgroup attaches the socket hooks to the cgroup2 directory
// cgroupPath, for every process in it and below. The links are pinned under
// PinDir()/links, named after the cgroup's inode, so they outlive the agent.
// Links pinned by an earlier agent are switched to this Datapath's programs
// instead of attaching a second time, which makes AttachCgroup idempotent
// and an upgrade atomic: no connect goes untranslated in between.
func (d *Datapath) AttachCgroup(cgroupPath string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	var st unix.Stat_t
	if err := unix.Stat(cgroupPath, &st); err != nil {
		return fmt.Errorf("attach to cgroup %s: %w", cgroupPath, err)
	}
	dir := filepath.Join(d.pinDir, "links") // made by Open
	for _, h := range d.hooks() {
		pin := filepath.Join(dir, fmt.Sprintf("cgroup-%d-%s", st.Ino, h.name))
		if err := attachPinned(cgroupPath, pin, h.attach, h.prog); err != nil {
			return fmt.Errorf("attach %s to cgroup %s: %w", h.name, cgroupPath, err)
		}
	}
	return nil
}

func attachPinned(cgroupPath, pin string, attach ebpf.AttachType, prog *ebpf.Program) error {
	if l, err := link.LoadPinnedLink(pin, nil); err == nil {
		uerr := l.Update(prog)
		l.Close()
		if uerr == nil {
			return nil
		}
		// The link outlived its cgroup (a recreated cgroup of the same
		// inode number) or cannot be updated: replace it.
		if err := os.Remove(pin); err != nil {
			return fmt.Errorf("replace stale link %s (%v): %w", pin, uerr, err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("load pinned link %s: %w", pin, err)
	}
	l, err := link.AttachCgroup(link.CgroupOptions{Path: cgroupPath, Attach: attach, Program: prog})
	if err != nil {
		return err
	}
	defer l.Close()
	if err := l.Pin(pin); err != nil {
		return fmt.Errorf("pin link (the kernel may lack bpf_link for cgroups): %w", err)
	}
	return nil
}

// Remove detaches the hooks pinned under pinDir, unpins everything there
// and removes the directory: once no agent holds them open, the maps go
// away. A missing pinDir is not an error.
func Remove(pinDir string) error {
	// Dropping a link's last pin releases it only later, from a work
	// queue; detaching first means no connect is translated once Remove
	// returns.
	links, err := os.ReadDir(filepath.Join(pinDir, "links"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove pins under %s: %w", pinDir, err)
	}
	for _, de := range links {
		pin := filepath.Join(pinDir, "links", de.Name())
		l, err := link.LoadPinnedLink(pin, nil)
		if err != nil {
			return fmt.Errorf("remove pins under %s: load %s: %w", pinDir, pin, err)
		}
		err = l.Detach()
		l.Close()
		if err != nil && !errors.Is(err, ebpf.ErrNotSupported) {
			return fmt.Errorf("remove pins under %s: detach %s: %w", pinDir, pin, err)
		}
	}
	if err := os.RemoveAll(pinDir); err != nil {
		return fmt.Errorf("remove pins under %s: %w", pinDir, err)
	}
	return nil
}

// cgroupID returns the id of the cgroup at rel in the cgroup2 hierarchy (the
// inode of its directory, which is what bpf_get_current_ancestor_cgroup_id
// returns for it) and its depth below the root (0 for the root itself).
func cgroupID(rel string) (id uint64, level uint32, err error) {
	root, err := cgroups.Mountpoint()
	if err != nil {
		return 0, 0, err
	}
	rel = filepath.Clean("/" + rel)
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(root, rel), &st); err != nil {
		return 0, 0, fmt.Errorf("cgroup %s: %w", rel, err)
	}
	if rel != "/" {
		level = uint32(strings.Count(rel, "/"))
	}
	return st.Ino, level, nil
}
