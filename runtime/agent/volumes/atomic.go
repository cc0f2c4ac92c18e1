package volumes

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// fileProjection is the content and mode of one file of a volume.
type fileProjection struct {
	data []byte
	mode os.FileMode
}

// payload is the whole content of a volume, by relative path.
type payload map[string]fileProjection

const (
	// dataDirName is the symlink to the timestamped directory that holds
	// the current payload.
	dataDirName = "..data"
	// newDataDirName is the symlink made next to it and renamed over it.
	newDataDirName = "..data_tmp"
	// tsDirPrefix is the time layout of the timestamped directories.
	tsDirPrefix = "..2006_01_02_15_04_05."

	maxFileNameLength = 255
	maxPathLength     = 4096
)

// writeAtomic makes dir hold exactly the files of p, the way kubelet's
// AtomicWriter does, so that a reader sees the whole old payload or the
// whole new one:
//
//  1. the payload is written into a new directory ..<timestamp>;
//  2. a symlink ..data_tmp -> ..<timestamp> is renamed over ..data;
//  3. each top-level name of the payload is a symlink name -> ..data/name,
//     made once and left alone afterwards;
//  4. the names that left the payload and the old directory are removed.
//
// When every file is already there with the same content and mode, nothing
// is written and ..data keeps pointing where it did. changed reports
// whether a new payload was switched to.
func writeAtomic(dir string, p payload) (changed bool, err error) {
	clean, err := cleanPayload(p)
	if err != nil {
		return false, err
	}
	oldTsName, err := os.Readlink(filepath.Join(dir, dataDirName))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return false, err
	}
	current := false
	if oldTsName != "" {
		if current, err = upToDate(clean, filepath.Join(dir, oldTsName)); err != nil {
			return false, err
		}
	}
	if !current {
		if err := swapPayload(dir, clean); err != nil {
			return false, err
		}
		changed = true
	}
	if err := createUserVisibleFiles(dir, clean); err != nil {
		return changed, err
	}
	return changed, removeStale(dir, clean)
}

// cleanPayload checks every path of p as kubelet does and returns p keyed
// by the cleaned paths.
func cleanPayload(p payload) (payload, error) {
	clean := make(payload, len(p))
	for name, fp := range p {
		if err := validatePath(name); err != nil {
			return nil, err
		}
		clean[filepath.Clean(name)] = fp
	}
	return clean, nil
}

// validatePath accepts a relative path without "..", within the length
// limits, that does not start with ".." (the writer's own names do).
func validatePath(target string) error {
	if target == "" {
		return fmt.Errorf("invalid path: must not be empty: %q", target)
	}
	if filepath.IsAbs(target) {
		return fmt.Errorf("invalid path: must be relative path: %s", target)
	}
	if len(target) > maxPathLength {
		return fmt.Errorf("invalid path: must be less than or equal to %d characters", maxPathLength)
	}
	items := strings.Split(target, string(os.PathSeparator))
	for _, item := range items {
		if item == ".." {
			return fmt.Errorf("invalid path: must not contain '..': %s", target)
		}
		if len(item) > maxFileNameLength {
			return fmt.Errorf("invalid path: filenames must be less than or equal to %d characters", maxFileNameLength)
		}
	}
	if strings.HasPrefix(items[0], "..") && len(items[0]) > 2 {
		return fmt.Errorf("invalid path: must not start with '..': %s", target)
	}
	return nil
}

// upToDate reports whether oldTsDir holds exactly the files of p, each a
// regular file with the same content and mode. A missing oldTsDir (..data
// dangling) is not up to date.
func upToDate(p payload, oldTsDir string) (bool, error) {
	want := map[string]bool{}
	for name := range p {
		for sub := name; sub != "." && sub != string(os.PathSeparator); sub = filepath.Dir(sub) {
			want[sub] = true
		}
	}
	extra := false
	err := filepath.WalkDir(oldTsDir, func(path string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(oldTsDir, path)
		if err != nil || rel == "." {
			return err
		}
		if !want[rel] {
			extra = true
			return filepath.SkipAll
		}
		return nil
	})
	switch {
	case errors.Is(err, os.ErrNotExist):
		return false, nil
	case err != nil:
		return false, err
	case extra:
		return false, nil
	}
	for name, fp := range p {
		path := filepath.Join(oldTsDir, name)
		fi, err := os.Lstat(path)
		if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != fp.mode.Perm() {
			return false, nil
		}
		data, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(data, fp.data) {
			return false, nil
		}
	}
	return true, nil
}

// swapPayload writes p into a new timestamped directory and points ..data
// at it.
func swapPayload(dir string, p payload) error {
	tsDir, err := os.MkdirTemp(dir, time.Now().UTC().Format(tsDirPrefix))
	if err != nil {
		return err
	}
	if err := writePayloadToDir(p, tsDir); err != nil {
		return errors.Join(err, os.RemoveAll(tsDir))
	}
	newDataDir := filepath.Join(dir, newDataDirName)
	// A ..data_tmp left by a write that was cut short is of no use.
	if err := os.Remove(newDataDir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return errors.Join(err, os.RemoveAll(tsDir))
	}
	if err := os.Symlink(filepath.Base(tsDir), newDataDir); err != nil {
		return errors.Join(err, os.RemoveAll(tsDir))
	}
	if err := os.Rename(newDataDir, filepath.Join(dir, dataDirName)); err != nil {
		return errors.Join(err, os.Remove(newDataDir), os.RemoveAll(tsDir))
	}
	return nil
}

// writePayloadToDir writes the files of p below dir, each with its mode
// whatever the umask.
func writePayloadToDir(p payload, dir string) error {
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}
	for name, fp := range p {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(path, fp.data, fp.mode.Perm()); err != nil {
			return err
		}
		if err := os.Chmod(path, fp.mode.Perm()); err != nil {
			return err
		}
	}
	return nil
}

// createUserVisibleFiles makes the symlink name -> ..data/name for each
// top-level name of p that has none yet.
func createUserVisibleFiles(dir string, p payload) error {
	for name := range p {
		top, _, _ := strings.Cut(name, string(os.PathSeparator))
		visible := filepath.Join(dir, top)
		if _, err := os.Lstat(visible); err == nil {
			continue
		} else if !errors.Is(err, os.ErrNotExist) {
			return err
		}
		if err := os.Symlink(filepath.Join(dataDirName, top), visible); err != nil {
			return err
		}
	}
	return nil
}

// removeStale removes what the current payload p does not use: the
// top-level symlinks into ..data of names that left it, and every
// timestamped directory but the one ..data points at (the previous payload
// and any left by a write that was cut short).
func removeStale(dir string, p payload) error {
	current, err := os.Readlink(filepath.Join(dir, dataDirName))
	if err != nil {
		return err
	}
	keep := map[string]bool{current: true}
	for name := range p {
		top, _, _ := strings.Cut(name, string(os.PathSeparator))
		keep[top] = true
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		if keep[e.Name()] || !isWriterEntry(dir, e) {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// isWriterEntry reports whether e is something the writer makes: a
// timestamped directory or a user-visible symlink into ..data.
func isWriterEntry(dir string, e fs.DirEntry) bool {
	name := e.Name()
	switch {
	case e.IsDir():
		return isTimestampDir(name)
	case e.Type()&fs.ModeSymlink != 0 && !strings.HasPrefix(name, ".."):
		target, err := os.Readlink(filepath.Join(dir, name))
		return err == nil && strings.HasPrefix(target, dataDirName+string(os.PathSeparator))
	}
	return false
}

// isTimestampDir reports whether name is one of the writer's payload
// directories: "..", then a time in tsDirPrefix's layout.
func isTimestampDir(name string) bool {
	if len(name) <= len(tsDirPrefix) || !strings.HasPrefix(name, "..") {
		return false
	}
	_, err := time.Parse(tsDirPrefix, name[:len(tsDirPrefix)])
	return err == nil
}
