package wasm

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"strconv"

	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
	"github.com/tetratelabs/wazero/experimental/sysfs"
	"github.com/tetratelabs/wazero/sys"
	"golang.org/x/sys/unix"
)

// procFD is the directory of this process's open descriptors. Each entry
// is a kernel link to exactly the file its descriptor holds, so a path
// "/proc/self/fd/N/name" names the entry name of the directory held by N,
// wherever that directory is and whatever links lead to it.
const procFD = "/proc/self/fd"

// confinedFS is a preopen's file system. Every path the guest names is
// resolved by openat2(2) with RESOLVE_IN_ROOT beneath a descriptor of the
// preopen's host directory: "..", absolute paths and symbolic links
// (absolute or relative, whoever made them) all resolve as if the preopen
// were the root of the file system, so they never reach a host file
// outside it. Once resolved, the operation runs on the descriptor the
// kernel returned (through /proc/self/fd) using wazero's own file
// implementation, so the guest sees the same errors and file behaviour as
// with wazero's directory mounts.
type confinedFS struct {
	experimentalsys.UnimplementedFS
	host string
	root int // O_PATH descriptor of host
	proc experimentalsys.FS
}

// newConfinedFS opens the host directory of a preopen. Close releases it.
func newConfinedFS(host string) (*confinedFS, error) {
	root, err := unix.Open(host, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open preopen directory %s: %w", host, err)
	}
	return &confinedFS{host: host, root: root, proc: sysfs.DirFS(procFD)}, nil
}

// Close releases the preopen's directory; files the guest still holds
// stay usable until wazero closes them.
func (c *confinedFS) Close() error { return unix.Close(c.root) }

// String is the host directory, as wazero's directory mounts show it.
func (c *confinedFS) String() string { return c.host }

// resolve opens p beneath the root with openat2 and the given open flags.
func (c *confinedFS) resolve(p string, flags int, mode uint32) (int, experimentalsys.Errno) {
	if p == "" {
		p = "."
	}
	if flags&unix.O_CREAT == 0 {
		mode = 0 // openat2 refuses a mode it would not use
	}
	for {
		fd, err := unix.Openat2(c.root, p, &unix.OpenHow{
			Flags:   uint64(flags | unix.O_CLOEXEC),
			Mode:    uint64(mode),
			Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
		})
		// EAGAIN: a rename elsewhere raced the lookup; the kernel asks
		// for a retry rather than risk a wrong answer.
		if err == unix.EINTR || err == unix.EAGAIN {
			continue
		}
		if err != nil {
			return -1, experimentalsys.UnwrapOSError(err)
		}
		return fd, 0
	}
}

// parent resolves the directory holding p's last element and returns a
// path to that element through /proc/self/fd, for the operations that act
// on a name and do not follow it (mkdir, unlink, rename, symlink, ...).
// The caller closes the descriptor.
func (c *confinedFS) parent(p string) (fd int, name string, errno experimentalsys.Errno) {
	p = path.Clean("/" + p)
	dir, base := path.Split(p)
	if base == "" {
		// The root itself: operate on it as "." of itself, never on
		// its host parent.
		dir, base = "/", "."
	}
	fd, errno = c.resolve(dir, unix.O_PATH|unix.O_DIRECTORY, 0)
	if errno != 0 {
		return -1, "", errno
	}
	return fd, strconv.Itoa(fd) + "/" + base, 0
}

// OpenFile implements experimentalsys.FS.
func (c *confinedFS) OpenFile(p string, flag experimentalsys.Oflag, perm fs.FileMode) (experimentalsys.File, experimentalsys.Errno) {
	pin, errno := c.resolve(p, openFlags(flag), uint32(perm.Perm()))
	if errno != 0 {
		return nil, errno
	}
	// The open above created, truncated and refused links as the guest
	// asked; reopening its descriptor must do none of that again.
	again := flag &^ (experimentalsys.O_CREAT | experimentalsys.O_EXCL | experimentalsys.O_TRUNC | experimentalsys.O_NOFOLLOW)
	f, errno := c.proc.OpenFile(strconv.Itoa(pin), again, perm)
	if errno != 0 {
		unix.Close(pin)
		return nil, errno
	}
	// wazero reopens a file by its path (to rewind a directory or change
	// O_APPEND), so the descriptor that path names lives as long as it.
	return &pinnedFile{File: f, pin: pin}, 0
}

// pinnedFile keeps the descriptor its /proc/self/fd path names open.
type pinnedFile struct {
	experimentalsys.File
	pin int
}

func (f *pinnedFile) Close() experimentalsys.Errno {
	errno := f.File.Close()
	if f.pin >= 0 {
		unix.Close(f.pin)
		f.pin = -1
	}
	return errno
}

// openFlags turns WASI open flags into open(2) flags.
func openFlags(flag experimentalsys.Oflag) int {
	var o int
	switch flag & (experimentalsys.O_RDONLY | experimentalsys.O_RDWR | experimentalsys.O_WRONLY) {
	case experimentalsys.O_RDWR:
		o = unix.O_RDWR
	case experimentalsys.O_WRONLY:
		o = unix.O_WRONLY
	default:
		o = unix.O_RDONLY
	}
	for wasi, host := range map[experimentalsys.Oflag]int{
		experimentalsys.O_APPEND:    unix.O_APPEND,
		experimentalsys.O_CREAT:     unix.O_CREAT,
		experimentalsys.O_DIRECTORY: unix.O_DIRECTORY,
		experimentalsys.O_DSYNC:     unix.O_DSYNC,
		experimentalsys.O_EXCL:      unix.O_EXCL,
		experimentalsys.O_NOFOLLOW:  unix.O_NOFOLLOW,
		experimentalsys.O_NONBLOCK:  unix.O_NONBLOCK,
		experimentalsys.O_RSYNC:     unix.O_RSYNC,
		experimentalsys.O_SYNC:      unix.O_SYNC,
		experimentalsys.O_TRUNC:     unix.O_TRUNC,
	} {
		if flag&wasi != 0 {
			o |= host
		}
	}
	return o
}

// stat resolves p (following a last link or not) and stats what the
// kernel found.
func (c *confinedFS) stat(p string, follow bool) (sys.Stat_t, experimentalsys.Errno) {
	flags := unix.O_PATH
	if !follow {
		flags |= unix.O_NOFOLLOW
	}
	fd, errno := c.resolve(p, flags, 0)
	if errno != 0 {
		return sys.Stat_t{}, errno
	}
	f := os.NewFile(uintptr(fd), p)
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return sys.Stat_t{}, experimentalsys.UnwrapOSError(err)
	}
	return sys.NewStat_t(fi), 0
}

// Stat implements experimentalsys.FS.
func (c *confinedFS) Stat(p string) (sys.Stat_t, experimentalsys.Errno) { return c.stat(p, true) }

// Lstat implements experimentalsys.FS.
func (c *confinedFS) Lstat(p string) (sys.Stat_t, experimentalsys.Errno) { return c.stat(p, false) }

// onResolved runs op on the /proc/self/fd path of p, resolved following
// a last link, as chmod and utimens do.
func (c *confinedFS) onResolved(p string, op func(string) experimentalsys.Errno) experimentalsys.Errno {
	fd, errno := c.resolve(p, unix.O_PATH, 0)
	if errno != 0 {
		return errno
	}
	defer unix.Close(fd)
	return op(strconv.Itoa(fd))
}

// onName runs op on the /proc/self/fd path of p's last element in its
// resolved parent directory.
func (c *confinedFS) onName(p string, op func(string) experimentalsys.Errno) experimentalsys.Errno {
	fd, name, errno := c.parent(p)
	if errno != 0 {
		return errno
	}
	defer unix.Close(fd)
	return op(name)
}

// onNames is onName for the two paths of rename and link.
func (c *confinedFS) onNames(from, to string, op func(string, string) experimentalsys.Errno) experimentalsys.Errno {
	return c.onName(from, func(fromName string) experimentalsys.Errno {
		return c.onName(to, func(toName string) experimentalsys.Errno {
			return op(fromName, toName)
		})
	})
}

// Mkdir implements experimentalsys.FS.
func (c *confinedFS) Mkdir(p string, perm fs.FileMode) experimentalsys.Errno {
	return c.onName(p, func(n string) experimentalsys.Errno { return c.proc.Mkdir(n, perm) })
}

// Chmod implements experimentalsys.FS.
func (c *confinedFS) Chmod(p string, perm fs.FileMode) experimentalsys.Errno {
	return c.onResolved(p, func(n string) experimentalsys.Errno { return c.proc.Chmod(n, perm) })
}

// Rename implements experimentalsys.FS.
func (c *confinedFS) Rename(from, to string) experimentalsys.Errno {
	return c.onNames(from, to, c.proc.Rename)
}

// Rmdir implements experimentalsys.FS.
func (c *confinedFS) Rmdir(p string) experimentalsys.Errno {
	return c.onName(p, c.proc.Rmdir)
}

// Unlink implements experimentalsys.FS.
func (c *confinedFS) Unlink(p string) experimentalsys.Errno {
	return c.onName(p, c.proc.Unlink)
}

// Link implements experimentalsys.FS. Like link(2) it does not follow a
// last link of oldName.
func (c *confinedFS) Link(oldName, newName string) experimentalsys.Errno {
	return c.onNames(oldName, newName, c.proc.Link)
}

// Symlink implements experimentalsys.FS. The target is stored as text;
// any use of the link resolves it beneath the root again.
func (c *confinedFS) Symlink(target, link string) experimentalsys.Errno {
	return c.onName(link, func(n string) experimentalsys.Errno { return c.proc.Symlink(target, n) })
}

// Readlink implements experimentalsys.FS.
func (c *confinedFS) Readlink(p string) (target string, errno experimentalsys.Errno) {
	errno = c.onName(p, func(n string) experimentalsys.Errno {
		target, errno = c.proc.Readlink(n)
		return errno
	})
	return target, errno
}

// Utimens implements experimentalsys.FS.
func (c *confinedFS) Utimens(p string, atim, mtim int64) experimentalsys.Errno {
	return c.onResolved(p, func(n string) experimentalsys.Errno { return c.proc.Utimens(n, atim, mtim) })
}
