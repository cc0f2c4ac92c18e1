// Package atomicfile replaces files so that a crash, or a reader at the
// same moment, sees either the old content or the new, never half of it.
// The node's checkpoints, its keys and certificates, the token file and the
// pod's hosts and resolv.conf are all written this way.
package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"
)

// Write replaces path with data, with permissions perm. The parent
// directory is made (mode 0700) when missing. The data reaches the disk
// before the rename, and the rename before Write returns, so the new
// content survives a power cut once Write has returned.
func Write(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create directory %s: %w", dir, err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	// Chmod before writing, so that secret bytes never sit in a file
	// others can read.
	err = f.Chmod(perm)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	// The rename itself is made durable; the new content is already in
	// place for this process either way.
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}
