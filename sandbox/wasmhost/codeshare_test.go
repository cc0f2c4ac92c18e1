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
// image's compiled code r-xp from the same file of the node's cache
// directory, and both guests serve (idleSandbox checks an answer).
func TestSandboxesShareCode(t *testing.T) {
	a := build(t)
	codeDir := filepath.Join(a.cache, "sha256-app", "code")
	var inodes []uint64
	var paths []string
	for range 2 {
		pid, _, stop := idleSandbox(t, a, a.app, appDigest)
		defer stop()
		path, size := codeMapping(t, pid, codeDir)
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() < size {
			t.Errorf("%s has %d bytes, mapped %d", path, fi.Size(), size)
		}
		inodes, paths = append(inodes, fi.Sys().(*syscall.Stat_t).Ino), append(paths, path)
	}
	if inodes[0] != inodes[1] {
		t.Errorf("the sandboxes map code files %v of inodes %v, want one file", paths, inodes)
	}
}

// codeMapping finds the process's r-xp mapping of a file of dir: the
// compiled code it shares. It fails the test if there is none.
func codeMapping(t testing.TB, pid int, dir string) (path string, size int64) {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/maps", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 6 && fields[1] == "r-xp" && filepath.Dir(fields[5]) == dir {
			var lo, hi int64
			if _, err := fmt.Sscanf(fields[0], "%x-%x", &lo, &hi); err != nil {
				t.Fatal(err)
			}
			return fields[5], hi - lo
		}
	}
	t.Fatalf("sandbox %d maps no code file of %s:\n%s", pid, dir, data)
	return "", 0
}
