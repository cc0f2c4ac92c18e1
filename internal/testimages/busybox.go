package testimages

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// BusyboxSource is where Debian's busybox-static package puts the binary
// that the busybox image carries.
const BusyboxSource = "/bin/busybox"

// BusyboxPath is the image's PATH.
const BusyboxPath = "/bin:/usr/bin"

// HelloAllocEnv makes the hello server allocate and touch that much memory
// (bytes, or with a Ki, Mi or Gi suffix) before serving, and hold it.
const HelloAllocEnv = "HELLO_ALLOC"

// BuildBusyboxOCIArchive builds an image named ref holding Debian's static
// busybox as /bin/busybox, a symlink in /bin for each of its applets, an
// /etc/passwd and /etc/group with root and nobody (65534), and the empty
// directories /tmp, /root, /usr/bin and /var/www. It has no entrypoint; its
// command is sh. The image is written as an OCI layout in a tar in a
// temporary directory of t, whose path is returned.
//
// A machine without busybox-static fails the test: `make deps` installs it.
func BuildBusyboxOCIArchive(t testing.TB, ref string) (archivePath string) {
	t.Helper()
	return writeOCIArchive(t, BusyboxImage(t), ref, "busybox-oci.tar")
}

// BusyboxImage is the image BuildBusyboxOCIArchive writes, in memory.
func BusyboxImage(t testing.TB) v1.Image {
	t.Helper()
	data, applets := staticBusybox(t)
	layerTar, err := busyboxLayer(data, applets)
	if err != nil {
		t.Fatalf("busybox layer: %v", err)
	}
	return singleLayerImage(t, layerTar, func(c *v1.Config) {
		c.Cmd = []string{"sh"}
		c.Env = []string{"PATH=" + BusyboxPath}
		c.WorkingDir = "/"
	})
}

// staticBusybox reads BusyboxSource, makes sure it needs no libc, and lists
// its applets.
func staticBusybox(t testing.TB) (data []byte, applets []string) {
	t.Helper()
	const install = "install Debian's busybox-static package (`make deps` does)"
	data, err := os.ReadFile(BusyboxSource)
	if err != nil {
		t.Fatalf("busybox image: %v: %s", err, install)
	}
	if err := checkStatic(data); err != nil {
		t.Fatalf("busybox image: %s %v: %s", BusyboxSource, err, install)
	}
	out, err := exec.Command(BusyboxSource, "--list").Output()
	if err != nil {
		t.Fatalf("busybox image: %s --list: %v", BusyboxSource, err)
	}
	for _, a := range strings.Fields(string(out)) {
		if a != "busybox" && !strings.Contains(a, "/") {
			applets = append(applets, a)
		}
	}
	if len(applets) == 0 {
		t.Fatalf("busybox image: %s --list printed no applets", BusyboxSource)
	}
	return data, applets
}

// checkStatic fails for a dynamically linked ELF binary, which is what the
// plain busybox package installs at the same path.
func checkStatic(data []byte) error {
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("is not an ELF binary: %w", err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("is dynamically linked (the busybox package, not busybox-static, is installed)")
		}
	}
	return nil
}

const (
	busyboxPasswd = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
	busyboxGroup  = "root:x:0:\nnobody:x:65534:\n"
)

// busyboxLayer is the layer tar: directories first, so that every entry's
// parent exists when a runtime unpacks it in order.
func busyboxLayer(busybox []byte, applets []string) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := []struct {
		name string
		mode int64
	}{
		{"bin/", 0o755}, {"etc/", 0o755}, {"root/", 0o700}, {"tmp/", 0o1777},
		{"usr/", 0o755}, {"usr/bin/", 0o755}, {"var/", 0o755}, {"var/www/", 0o755},
	}
	for _, d := range dirs {
		if err := tw.WriteHeader(&tar.Header{Name: d.name, Mode: d.mode, Typeflag: tar.TypeDir}); err != nil {
			return nil, err
		}
	}
	files := []struct {
		name string
		mode int64
		data []byte
	}{
		{"bin/busybox", 0o755, busybox},
		{"etc/passwd", 0o644, []byte(busyboxPasswd)},
		{"etc/group", 0o644, []byte(busyboxGroup)},
	}
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data)), Typeflag: tar.TypeReg}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	for _, a := range applets {
		if err := tw.WriteHeader(&tar.Header{Name: "bin/" + a, Linkname: "busybox", Mode: 0o777, Typeflag: tar.TypeSymlink}); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
