package lb

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// BPFFS is where bpffs is mounted when nothing is.
const BPFFS = "/sys/fs/bpf"

// ensurePinDir makes pinDir, with its links directory, on a BPF
// filesystem, mounting one at BPFFS first when nothing is mounted there.
func ensurePinDir(pinDir string) error {
	if !onBPFFS(BPFFS) {
		if err := os.MkdirAll(BPFFS, 0o700); err != nil {
			return fmt.Errorf("create %s: %w", BPFFS, err)
		}
		if err := unix.Mount("bpffs", BPFFS, "bpf", 0, "mode=0700"); err != nil {
			return fmt.Errorf("mount bpffs at %s: %w", BPFFS, err)
		}
	}
	if err := os.MkdirAll(filepath.Join(pinDir, "links"), 0o700); err != nil {
		return fmt.Errorf("create pin directory: %w", err)
	}
	if !onBPFFS(pinDir) {
		return fmt.Errorf("pin directory %s is not on a BPF filesystem", pinDir)
	}
	return nil
}

func onBPFFS(path string) bool {
	var st unix.Statfs_t
	return unix.Statfs(path, &st) == nil && st.Type == unix.BPF_FS_MAGIC
}
