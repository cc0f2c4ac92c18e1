// Package atomicfile replaces files so that a crash, or a reader at the
// same moment, sees either the old content or the new, never half of it.
// The node's checkpoints, its keys and certificates and the token file are
// written this way, durably; the pod's hosts and resolv.conf too, without
// waiting for the disk (Replace).
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
	return write(path, data, perm, true)
}

// Replace is Write without the trip to the disk: readers and a crash of
// the writing process still see the old content or the new, but a power
// cut may leave either, or an empty file. It is for files that are made
// again whenever they matter after a reboot, such as those of a pod's
// network namespace, which does not outlive one.
func Replace(path string, data []byte, perm os.FileMode) error {
	return write(path, data, perm, false)
}

func write(path string, data []byte, perm os.FileMode, durable bool) error {
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
	if err == nil && durable {
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
	if !durable {
		return nil
	}
	// The rename itself is made durable; the new content is already in
	// place for this process either way.
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}
