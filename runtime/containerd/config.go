package containerd

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// maxSocketPath is the longest unix socket path Linux accepts: sun_path is
// 108 bytes and the kernel wants room for the terminating NUL.
const maxSocketPath = 107

// disabledPlugins are switched off because an edge node does not use them,
// and each one left on costs memory, start-up time or log noise:
//   - cri: the agent drives containerd through its client API; CRI would start
//     a second image service and network plugin machinery we do not use.
//   - aufs, btrfs, devmapper, zfs: they need filesystems or kernel modules a
//     small node rarely has, and fail noisily at start when absent.
//   - opt: it would create /opt/containerd outside our data directory.
//   - tracing: nothing collects traces on a node.
//
// The legacy runtime v1 (io.containerd.runtime.v1.linux) stays on although
// we use only the runc v2 shim: containerd 1.6's tasks service refuses to
// load without it, and with it the whole container API.
var disabledPlugins = []string{
	"io.containerd.grpc.v1.cri",
	"io.containerd.snapshotter.v1.aufs",
	"io.containerd.snapshotter.v1.btrfs",
	"io.containerd.snapshotter.v1.devmapper",
	"io.containerd.snapshotter.v1.zfs",
	"io.containerd.internal.v1.opt",
	"io.containerd.internal.v1.tracing",
	"io.containerd.tracing.processor.v1.otlp",
}

// layout holds the paths the child uses, all under one directory so that
// removing the directory removes every trace of it.
type layout struct {
	dir, root, state, config, log, pidFile, grpc, ttrpc string
}

func newLayout(dir string) (layout, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return layout{}, fmt.Errorf("containerd dir %q: %w", dir, err)
	}
	l := layout{
		dir:     abs,
		root:    filepath.Join(abs, "root"),
		state:   filepath.Join(abs, "state"),
		config:  filepath.Join(abs, "config.toml"),
		log:     filepath.Join(abs, "containerd.log"),
		pidFile: filepath.Join(abs, "containerd.pid"),
		grpc:    filepath.Join(abs, "containerd.sock"),
		ttrpc:   filepath.Join(abs, "containerd.sock.ttrpc"),
	}
	// The ttrpc socket has the longest path; check it so both fit.
	if len(l.ttrpc) > maxSocketPath {
		return layout{}, fmt.Errorf("containerd dir %q is too long: socket path %q is %d bytes, unix sockets allow at most %d",
			abs, l.ttrpc, len(l.ttrpc), maxSocketPath)
	}
	// TOML literal strings cannot hold a quote or a line break; such a path
	// is not worth escaping for.
	if strings.ContainsAny(abs, "'\n\r") {
		return layout{}, fmt.Errorf("containerd dir %q: quotes and line breaks are not supported in the path", abs)
	}
	return l, nil
}

// configTOML renders a version 2 config, which containerd 1.6 and 1.7 both
// read.
func (l layout) configTOML() string {
	var b strings.Builder
	fmt.Fprintf(&b, "version = 2\n")
	fmt.Fprintf(&b, "root = '%s'\n", l.root)
	fmt.Fprintf(&b, "state = '%s'\n", l.state)
	fmt.Fprintf(&b, "disabled_plugins = [")
	for i, p := range disabledPlugins {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%q", p)
	}
	b.WriteString("]\n\n")
	fmt.Fprintf(&b, "[grpc]\n  address = '%s'\n\n", l.grpc)
	fmt.Fprintf(&b, "[ttrpc]\n  address = '%s'\n\n", l.ttrpc)
	// An empty debug address keeps containerd from opening its default debug
	// socket under /run/containerd, which a system containerd may own.
	fmt.Fprintf(&b, "[debug]\n  address = ''\n  level = 'warn'\n\n")
	fmt.Fprintf(&b, "[metrics]\n  address = ''\n")
	return b.String()
}

func (l layout) writeConfig() error {
	for _, d := range []string{l.dir, l.root, l.state} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("create containerd dir: %w", err)
		}
	}
	if err := os.WriteFile(l.config, []byte(l.configTOML()), 0o600); err != nil {
		return fmt.Errorf("write containerd config: %w", err)
	}
	return nil
}
