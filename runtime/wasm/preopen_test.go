package wasm

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPreopenLinksStayInside plants symbolic links to a host file outside
// every preopen, from the host (as another container sharing the volume
// could) and from the guest itself, absolute and with "..": none lets the
// guest read or write that file, while ordinary file work in the preopen
// goes on.
func TestPreopenLinksStayInside(t *testing.T) {
	m := compileGuest(t, "files")
	rw, ro := t.TempDir(), t.TempDir()
	secretDir := t.TempDir()
	secret := filepath.Join(secretDir, "secret.txt")
	const secretText = "the host secret"
	for file, data := range map[string]string{
		secret:                          secretText,
		filepath.Join(rw, "inside.txt"): "inside the preopen",
		filepath.Join(ro, "in.txt"):     "from the host",
	} {
		if err := os.WriteFile(file, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	up := strings.Repeat("../", 16)
	for link, target := range map[string]string{
		"abs":    secret,
		"rel":    up + secret[1:],
		"absdir": secretDir,
		"reldir": up + secretDir[1:],
		"rooted": "/inside.txt",
	} {
		if err := os.Symlink(target, filepath.Join(rw, link)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(secret, filepath.Join(ro, "abs")); err != nil {
		t.Fatal(err)
	}

	res, out := run(t, m, WithPreopen(rw, "/data", false), WithPreopen(ro, "/config", true),
		WithArgv("files",
			"symlink", "/data/grel="+up+secret[1:],
			"symlink", "/data/gabs="+secret,
			"symlink", "/data/gdir="+up+secretDir[1:],
			"read", "/data/abs",
			"read", "/data/rel",
			"read", "/data/absdir/secret.txt",
			"read", "/data/reldir/secret.txt",
			"read", "/data/grel",
			"read", "/data/gabs",
			"read", "/data/gdir/secret.txt",
			"read", "/config/abs",
			"read", "/data/rooted",
			"write", "/data/abs",
			"write", "/data/rel",
			"write", "/data/absdir/secret.txt",
			"write", "/data/reldir/secret.txt",
			"write", "/data/grel",
			"write", "/data/gdir/secret.txt",
			"write", "/data/reldir/new.txt",
			"mkdir", "/data/sub",
			"write", "/data/sub/a.txt",
			"rename", "/data/sub/a.txt=/data/sub/b.txt",
			"read", "/data/sub/b.txt",
			"list", "/data/sub",
			"remove", "/data/sub/b.txt",
			"remove", "/data/sub",
			"remove", "/data/abs",
			"mkdir", "/config/sub",
			"remove", "/config/in.txt",
			"symlink", "/config/l=in.txt",
			"rename", "/config/in.txt=/config/moved.txt",
		))
	if res.Termination != Exited || res.ExitCode != 0 {
		t.Fatalf("result %+v; stderr:\n%s", res, out.stderr.String())
	}
	stdout := out.stdout.String()
	if strings.Contains(stdout, secretText) {
		t.Errorf("the guest read the host file through a link:\n%s", stdout)
	}
	for _, want := range []string{
		"ok symlink /data/grel=",
		"ok read /data/rooted inside the preopen\n",
		"ok mkdir /data/sub\n",
		"ok write /data/sub/a.txt\n",
		"ok rename /data/sub/a.txt=/data/sub/b.txt\n",
		"ok read /data/sub/b.txt written by the guest\n",
		"ok list /data/sub b.txt\n",
		"ok remove /data/sub/b.txt\n",
		"ok remove /data/sub\n",
		"ok remove /data/abs\n",
		"error mkdir /config/sub:",
		"error remove /config/in.txt:",
		"error symlink /config/l=in.txt:",
		"error rename /config/in.txt=/config/moved.txt:",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	entries, err := os.ReadDir(secretDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("the guest created files beside the host file: %v", entries)
	}
	if data, err := os.ReadFile(secret); err != nil || string(data) != secretText {
		t.Errorf("host file outside the preopens is now %q, %v", data, err)
	}
	// The link the guest removed was the link, not its target.
	if _, err := os.Lstat(filepath.Join(rw, "abs")); !os.IsNotExist(err) {
		t.Errorf("link /data/abs after its removal: %v", err)
	}
	if _, err := os.Stat(filepath.Join(rw, "sub")); !os.IsNotExist(err) {
		t.Errorf("removed directory /data/sub: %v", err)
	}
	if data, _ := os.ReadFile(filepath.Join(ro, "in.txt")); string(data) != "from the host" {
		t.Errorf("read-only file changed to %q", data)
	}
	t.Logf("guest output:\n%s", stdout)
}
