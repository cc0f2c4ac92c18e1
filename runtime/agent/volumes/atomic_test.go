package volumes

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

var tsDirPattern = regexp.MustCompile(`^\.\.\d{4}_\d{2}_\d{2}_\d{2}_\d{2}_\d{2}\.\d+$`)

// timestampDirs lists the payload directories in dir.
func timestampDirs(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if tsDirPattern.MatchString(e.Name()) {
			out = append(out, e.Name())
		}
	}
	return out
}

func mustWrite(t *testing.T, dir string, p payload) bool {
	t.Helper()
	changed, err := writeAtomic(dir, p)
	if err != nil {
		t.Fatalf("writeAtomic: %v", err)
	}
	return changed
}

func TestWriteAtomicLayout(t *testing.T) {
	dir := t.TempDir()
	changed := mustWrite(t, dir, payload{
		"a.conf":     {data: []byte("alpha"), mode: 0o644},
		"sub/b.conf": {data: []byte("beta"), mode: 0o600},
	})
	if !changed {
		t.Error("first write reported no change")
	}
	target := dataTarget(t, dir)
	if !tsDirPattern.MatchString(target) {
		t.Errorf("..data -> %q, want a timestamped directory name", target)
	}
	if ts := timestampDirs(t, dir); !slices.Equal(ts, []string{target}) {
		t.Errorf("timestamped directories %v, want only %q", ts, target)
	}
	for name, want := range map[string]string{"a.conf": "..data/a.conf", "sub": "..data/sub"} {
		got, err := os.Readlink(filepath.Join(dir, name))
		if err != nil || got != want {
			t.Errorf("%s -> %q (%v), want a symlink to %q", name, got, err, want)
		}
	}
	if got := readVolumeFile(t, dir, "a.conf"); got != "alpha" {
		t.Errorf("a.conf = %q", got)
	}
	if got := readVolumeFile(t, dir, "sub/b.conf"); got != "beta" {
		t.Errorf("sub/b.conf = %q", got)
	}
	if got := realMode(t, dir, "sub/b.conf"); got != 0o600 {
		t.Errorf("mode of sub/b.conf = %o, want 600", got)
	}
	if fi, err := os.Lstat(filepath.Join(dir, target, "a.conf")); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("the payload file is not a regular file: %v %v", fi, err)
	}
	for _, name := range []string{newDataDirName} {
		if _, err := os.Lstat(filepath.Join(dir, name)); !os.IsNotExist(err) {
			t.Errorf("%s left behind: %v", name, err)
		}
	}
}

func TestWriteAtomicUpdates(t *testing.T) {
	dir := t.TempDir()
	base := payload{
		"a":     {data: []byte("1"), mode: 0o644},
		"gone":  {data: []byte("x"), mode: 0o644},
		"d/e/f": {data: []byte("deep"), mode: 0o644},
	}
	mustWrite(t, dir, base)
	first := dataTarget(t, dir)

	if mustWrite(t, dir, base) {
		t.Error("rewriting the same payload reported a change")
	}
	if got := dataTarget(t, dir); got != first {
		t.Errorf("same payload moved ..data from %q to %q", first, got)
	}

	// A mode change alone is a new payload.
	modeOnly := payload{"a": {data: []byte("1"), mode: 0o600}, "gone": base["gone"], "d/e/f": base["d/e/f"]}
	if !mustWrite(t, dir, modeOnly) {
		t.Error("a mode change reported no change")
	}
	second := dataTarget(t, dir)
	if second == first {
		t.Error("a mode change kept ..data where it was")
	}
	if got := realMode(t, dir, "a"); got != 0o600 {
		t.Errorf("mode of a = %o, want 600", got)
	}

	// New content, one key gone, the nested one moved.
	next := payload{"a": {data: []byte("2"), mode: 0o644}, "d/g": {data: []byte("moved"), mode: 0o644}}
	if !mustWrite(t, dir, next) {
		t.Error("a content change reported no change")
	}
	third := dataTarget(t, dir)
	if third == second {
		t.Error("a content change kept ..data where it was")
	}
	if got := readVolumeFile(t, dir, "a"); got != "2" {
		t.Errorf("a = %q after the update", got)
	}
	if got := readVolumeFile(t, dir, "d/g"); got != "moved" {
		t.Errorf("d/g = %q after the update", got)
	}
	for _, name := range []string{"gone", "d/e/f", "d/e"} {
		if _, err := os.Lstat(filepath.Join(dir, name)); !os.IsNotExist(err) {
			t.Errorf("%s still there after it left the payload: %v", name, err)
		}
	}
	if ts := timestampDirs(t, dir); !slices.Equal(ts, []string{third}) {
		t.Errorf("timestamped directories %v, want only the current %q", ts, third)
	}
}

func TestWriteAtomicEmptyPayload(t *testing.T) {
	dir := t.TempDir()
	mustWrite(t, dir, payload{"k": {data: []byte("v"), mode: 0o644}})
	mustWrite(t, dir, payload{})
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	// ReadDir sorts: "..2…" comes before "..data".
	if len(names) != 2 || !tsDirPattern.MatchString(names[0]) || names[1] != dataDirName {
		t.Errorf("an empty payload left %v, want only ..data and its directory", names)
	}
}

func TestWriteAtomicRecovers(t *testing.T) {
	dir := t.TempDir()
	p := payload{"k": {data: []byte("v"), mode: 0o644}}
	mustWrite(t, dir, p)
	// What a write cut short leaves: a ..data_tmp link and an unused
	// payload directory. And ..data pointing at a directory that is gone.
	if err := os.Symlink("..2001_01_01_00_00_00.1", filepath.Join(dir, newDataDirName)); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "..2001_01_01_00_00_00.1"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(dir, dataTarget(t, dir))); err != nil {
		t.Fatal(err)
	}
	if !mustWrite(t, dir, p) {
		t.Error("a write over a dangling ..data reported no change")
	}
	if got := readVolumeFile(t, dir, "k"); got != "v" {
		t.Errorf("k = %q", got)
	}
	if ts := timestampDirs(t, dir); len(ts) != 1 || ts[0] != dataTarget(t, dir) {
		t.Errorf("timestamped directories %v, want only the current one", ts)
	}
	if _, err := os.Lstat(filepath.Join(dir, newDataDirName)); !os.IsNotExist(err) {
		t.Errorf("stale ..data_tmp still there: %v", err)
	}
}

func TestWriteAtomicRejectsBadPaths(t *testing.T) {
	for _, bad := range []string{"", "/etc/passwd", "../up", "a/../../b", "..data", "..hidden", strings.Repeat("x", 256)} {
		dir := t.TempDir()
		if _, err := writeAtomic(dir, payload{bad: {data: []byte("x"), mode: 0o644}}); err == nil {
			t.Errorf("path %q was accepted", bad)
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Errorf("path %q: rejected payload still wrote %d entries", bad, len(entries))
		}
	}
	dir := t.TempDir()
	if _, err := writeAtomic(dir, payload{"./ok/../fine": {data: []byte("x"), mode: 0o644}}); err == nil {
		t.Error(`a path with ".." was accepted`)
	}
	if _, err := writeAtomic(dir, payload{"./a//b": {data: []byte("x"), mode: 0o644}}); err != nil {
		t.Errorf("a path that cleans to a/b: %v", err)
	} else if got := readVolumeFile(t, dir, "a/b"); got != "x" {
		t.Errorf("a/b = %q", got)
	}
}
