package testimages

import (
	"archive/tar"
	"bufio"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
)

// unpackArchive extracts a tar file into a new temporary directory.
func unpackArchive(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dir := t.TempDir()
	untar(t, f, dir)
	return dir
}

// readOCIArchive reads an OCI layout archive with the layout reader, as
// containerd will see it, checks that it holds one image named ref, and
// returns that image.
func readOCIArchive(t *testing.T, path, ref string) v1.Image {
	t.Helper()
	idx, err := layout.ImageIndexFromPath(unpackArchive(t, path))
	if err != nil {
		t.Fatalf("read layout: %v", err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Manifests) != 1 || m.Manifests[0].Annotations[annotationContainerdName] != ref {
		t.Fatalf("index manifests = %+v, want one image named %s", m.Manifests, ref)
	}
	img, err := idx.Image(m.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// onlyLayer checks that img has one layer and opens it uncompressed.
func onlyLayer(t *testing.T, img v1.Image) io.ReadCloser {
	t.Helper()
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers = %d, %v; want 1", len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	return rc
}

// untar extracts directories, regular files and symlinks, with their modes.
func untar(t *testing.T, r io.Reader, dir string) {
	t.Helper()
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(dir, hdr.Name)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(dst, 0o755)
			if err == nil {
				err = os.Chmod(dst, os.FileMode(hdr.Mode&0o777)|modeBits(hdr.Mode))
			}
		case tar.TypeSymlink:
			err = os.Symlink(hdr.Linkname, dst)
		case tar.TypeReg:
			var b []byte
			if b, err = io.ReadAll(tr); err == nil {
				err = os.WriteFile(dst, b, os.FileMode(hdr.Mode&0o777))
			}
		default:
			t.Fatalf("%s: unexpected tar entry type %c", hdr.Name, hdr.Typeflag)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// modeBits turns the tar sticky bit into Go's.
func modeBits(mode int64) os.FileMode {
	if mode&0o1000 != 0 {
		return os.ModeSticky
	}
	return 0
}

func TestBusyboxOCIArchive(t *testing.T) {
	ref := "example.test/busybox:v1"
	img := readOCIArchive(t, BuildBusyboxOCIArchive(t, ref), ref)
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(cf.Config.Cmd, " "); got != "sh" || len(cf.Config.Entrypoint) != 0 {
		t.Errorf("entrypoint %q cmd %q, want none and sh", cf.Config.Entrypoint, got)
	}
	if got := strings.Join(cf.Config.Env, " "); got != "PATH="+BusyboxPath {
		t.Errorf("env = %q", got)
	}
	rc := onlyLayer(t, img)
	defer rc.Close()
	root := t.TempDir()
	untar(t, rc, root)

	for _, applet := range []string{"sh", "httpd", "sleep", "wget", "env", "cat", "id", "hostname", "stat"} {
		if target, err := os.Readlink(filepath.Join(root, "bin", applet)); err != nil || target != "busybox" {
			t.Errorf("/bin/%s -> %q, %v; want a symlink to busybox", applet, target, err)
		}
	}
	if st, err := os.Stat(filepath.Join(root, "tmp")); err != nil || st.Mode()&os.ModeSticky == 0 || st.Mode().Perm() != 0o777 {
		t.Errorf("/tmp: %v, %v; want a sticky 0777 directory", st, err)
	}
	// The image works as a root filesystem: a shell in it finds its applets
	// on PATH and the users in /etc.
	cmd := exec.Command("chroot", root, "/bin/sh", "-c", `echo "$((40+2))"; id -u nobody; id -g nobody; id -un; ls -d /usr/bin /var/www`)
	cmd.Env = []string{"PATH=" + BusyboxPath}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("shell in the image: %v\n%s", err, out)
	}
	if want := "42\n65534\n65534\nroot\n/usr/bin\n/var/www\n"; string(out) != want {
		t.Errorf("shell in the image printed %q, want %q", out, want)
	}
}

func TestCheckStaticRejectsDynamic(t *testing.T) {
	// The test binary itself may be static or not; a shell from the host
	// is dynamic on Debian.
	data, err := os.ReadFile("/usr/bin/env")
	if err != nil {
		t.Fatal(err)
	}
	if err := checkStatic(data); err == nil {
		t.Error("checkStatic accepted /usr/bin/env, a dynamically linked binary")
	}
	if err := checkStatic([]byte("#!/bin/sh\n")); err == nil {
		t.Error("checkStatic accepted a script")
	}
	data, err = os.ReadFile(BusyboxSource)
	if err != nil {
		t.Fatalf("%v: install busybox-static (`make deps`)", err)
	}
	if err := checkStatic(data); err != nil {
		t.Errorf("%s: %v", BusyboxSource, err)
	}
}

// TestHelloAllocHoldsMemory runs the hello binary with HELLO_ALLOC and checks
// that the memory is resident, which is what a memory limit acts on.
func TestHelloAllocHoldsMemory(t *testing.T) {
	// It allocates before it listens, so an answer means the memory is held.
	proc, _ := startHello(t, BuildHelloBinary(t), HelloAllocEnv+"=64Mi")
	rss := vmRSS(t, proc.Pid)
	if rss < 64<<20 {
		t.Errorf("VmRSS = %d bytes with %s=64Mi, want at least %d", rss, HelloAllocEnv, 64<<20)
	}
}

func TestHelloAllocRejectsBadSize(t *testing.T) {
	bin := BuildHelloBinary(t)
	for _, size := range []string{"lots", "12Mb", "-1Mi"} {
		cmd := exec.Command(bin)
		cmd.Env = []string{"HELLO_ADDR=127.0.0.1:0", HelloAllocEnv + "=" + size}
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), HelloAllocEnv) {
			t.Errorf("%s=%s: %v, %q; want a failure naming the variable", HelloAllocEnv, size, err, out)
		}
	}
}

// vmRSS reads a process's resident set size in bytes.
func vmRSS(t *testing.T, pid int) int64 {
	t.Helper()
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatalf("VmRSS %q: %v", v, err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}
