package volumes

import (
	"fmt"
	"os"

	corev1 "k8s.io/api/core/v1"
)

// setupHostPath checks a hostPath volume's path against its type, making
// it first for DirectoryOrCreate and FileOrCreate, as kubelet does. The
// volume is the path itself.
func setupHostPath(src *corev1.HostPathVolumeSource) (Mount, error) {
	typ := corev1.HostPathUnset
	if src.Type != nil {
		typ = *src.Type
	}
	if err := checkHostPathType(src.Path, typ); err != nil {
		return Mount{}, err
	}
	return Mount{HostPath: src.Path}, nil
}

// checkHostPathType follows kubelet's checkTypeInternal: the same checks,
// the same creation modes and the same messages.
func checkHostPathType(path string, typ corev1.HostPathType) error {
	fi, err := os.Stat(path)
	exists := err == nil
	switch typ {
	case corev1.HostPathUnset:
		return nil
	case corev1.HostPathDirectoryOrCreate:
		if !exists {
			return os.MkdirAll(path, 0o755)
		}
		return hostPathIs(path, fi, exists, isDir, "a directory")
	case corev1.HostPathDirectory:
		return hostPathIs(path, fi, exists, isDir, "a directory")
	case corev1.HostPathFileOrCreate:
		if !exists {
			// The parent must exist, as in kubelet.
			f, err := os.OpenFile(path, os.O_CREATE, 0o644)
			if err != nil {
				return err
			}
			return f.Close()
		}
		return hostPathIs(path, fi, exists, os.FileMode.IsRegular, "a file")
	case corev1.HostPathFile:
		return hostPathIs(path, fi, exists, os.FileMode.IsRegular, "a file")
	case corev1.HostPathSocket:
		return hostPathIs(path, fi, exists, isType(os.ModeSocket), "a socket file")
	case corev1.HostPathCharDev:
		return hostPathIs(path, fi, exists, isType(os.ModeDevice|os.ModeCharDevice), "a character device")
	case corev1.HostPathBlockDev:
		return hostPathIs(path, fi, exists, isType(os.ModeDevice), "a block device")
	}
	return fmt.Errorf("%s is an invalid volume type", typ)
}

func hostPathIs(path string, fi os.FileInfo, exists bool, ok func(os.FileMode) bool, what string) error {
	if !exists || !ok(fi.Mode()) {
		return fmt.Errorf("hostPath type check failed: %s is not %s", path, what)
	}
	return nil
}

func isDir(m os.FileMode) bool { return m.IsDir() }

// isType matches a file whose type bits are exactly t.
func isType(t os.FileMode) func(os.FileMode) bool {
	return func(m os.FileMode) bool { return m.Type() == t }
}
