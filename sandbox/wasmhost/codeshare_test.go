package wasmhost_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestSandboxesShareCode runs two sandboxes of one image: each maps the
// image's compiled code r-xp, and its data segments' pages into the guest's
// memory privately (copy on write), from the same files of the node's
// cache directory, and both guests serve (idleSandbox checks an answer).
func TestSandboxesShareCode(t *testing.T) {
	a := build(t)
	codeDir := filepath.Join(a.cache, "sha256-app", "shared")
	var inodes []uint64
	var paths []string
	for range 2 {
		pid, _, stop := idleSandbox(t, a, a.app, appDigest)
		defer stop()
		path, size := mapping(t, pid, codeDir, "r-xp", ".code")
		dataPath, _ := mapping(t, pid, codeDir, "rw-p", ".mem")
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() < size {
			t.Errorf("%s has %d bytes, mapped %d", path, fi.Size(), size)
		}
		inodes, paths = append(inodes, fi.Sys().(*syscall.Stat_t).Ino), append(paths, path, dataPath)
	}
	if inodes[0] != inodes[1] || paths[1] != paths[3] {
		t.Errorf("the sandboxes map files %v, code of inodes %v; want the same files", paths, inodes)
	}
}

// mapping finds the process's mapping with perms of a file of dir named
// *ext, failing the test if there is none.
func mapping(t testing.TB, pid int, dir, perms, ext string) (path string, size int64) {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/maps", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 6 && fields[1] == perms && filepath.Dir(fields[5]) == dir && filepath.Ext(fields[5]) == ext {
			var lo, hi int64
			if _, err := fmt.Sscanf(fields[0], "%x-%x", &lo, &hi); err != nil {
				t.Fatal(err)
			}
			return fields[5], hi - lo
		}
	}
	t.Fatalf("sandbox %d maps no %s file *%s of %s:\n%s", pid, perms, ext, dir, data)
	return "", 0
}
