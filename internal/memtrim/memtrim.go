// Package memtrim gives back the memory a long-running process holds only
// because it started: the pages of its own executable that package
// initialization touched once and never needs again.
//
// A Go binary that embeds kubectl, etcd and client-go is large, and running
// every package's init faults in pages scattered over its whole text and
// data, each fault also mapping its neighbours (fault-around). Those pages
// are clean and file-backed, so handing them back costs nothing: the kernel
// drops them from this process's mappings (MADV_PAGEOUT) and faults back in,
// one page at a time (MADV_RANDOM), only what is used again.
package memtrim

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Executable trims the mappings of the running executable. It returns the
// number of bytes of address space advised.
func Executable() (int, error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, fmt.Errorf("memtrim: finding the executable: %w", err)
	}
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return 0, fmt.Errorf("memtrim: reading mappings: %w", err)
	}
	defer f.Close()
	total := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		// address perms offset dev inode path
		if len(fields) < 6 || fields[5] != exe || strings.Contains(fields[1], "w") {
			continue
		}
		start, end, ok := parseRange(fields[0])
		if !ok {
			continue
		}
		n := int(end - start)
		// Both are advice: a kernel without MADV_PAGEOUT simply keeps the pages.
		_, _, _ = unix.Syscall(unix.SYS_MADVISE, uintptr(start), uintptr(n), unix.MADV_RANDOM)
		if _, _, errno := unix.Syscall(unix.SYS_MADVISE, uintptr(start), uintptr(n), unix.MADV_PAGEOUT); errno != 0 {
			return total, fmt.Errorf("memtrim: madvise %s: %w", fields[0], errno)
		}
		total += n
	}
	return total, sc.Err()
}

func parseRange(s string) (start, end uint64, ok bool) {
	a, b, found := strings.Cut(s, "-")
	if !found {
		return 0, 0, false
	}
	start, err1 := strconv.ParseUint(a, 16, 64)
	end, err2 := strconv.ParseUint(b, 16, 64)
	return start, end, err1 == nil && err2 == nil && end > start
}
