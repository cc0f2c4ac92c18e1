package lb

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// BPFFS is where bpffs is mounted when nothing is.
const BPFFS = "/sys/fs/bpf"

// Cgroup2Root returns where the cgroup2 hierarchy is mounted (on hybrid
// hosts it is not /sys/fs/cgroup).
func Cgroup2Root() (string, error) {
	return findMount("cgroup2", "")
}

// findMount returns the first mount point of fstype in /proc/self/mountinfo,
// or of fstype at exactly at when at is set.
func findMount(fstype, at string) (string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", fmt.Errorf("find %s mount: %w", fstype, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		// id parent major:minor root mountpoint options [optional...] - fstype source superoptions
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		pf, sf := strings.Fields(pre), strings.Fields(post)
		if len(pf) < 5 || len(sf) < 1 || sf[0] != fstype {
			continue
		}
		mp := unescapeMountinfo(pf[4])
		if at == "" || mp == at {
			return mp, nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("find %s mount: read mountinfo: %w", fstype, err)
	}
	return "", fmt.Errorf("find %s mount: %w", fstype, fs.ErrNotExist)
}

// unescapeMountinfo undoes mountinfo's octal escapes (\040 for a space).
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var c byte
			if _, err := fmt.Sscanf(s[i+1:i+4], "%03o", &c); err == nil {
				b.WriteByte(c)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// ensureBPFFS mounts bpffs at BPFFS unless one is mounted there already.
func ensureBPFFS() error {
	if _, err := findMount("bpf", BPFFS); err == nil {
		return nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := os.MkdirAll(BPFFS, 0o700); err != nil {
		return fmt.Errorf("mount bpffs: %w", err)
	}
	if err := unix.Mount("bpffs", BPFFS, "bpf", 0, "mode=0700"); err != nil {
		return fmt.Errorf("mount bpffs at %s: %w", BPFFS, err)
	}
	return nil
}

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
	dir := filepath.Join(d.pinDir, "links")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("attach to cgroup %s: %w", cgroupPath, err)
	}
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
