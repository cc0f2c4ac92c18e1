package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"

	"k8s.io/client-go/kubernetes"

	"github.com/wasmkube/wasmkube/internal/atomicfile"
	"github.com/wasmkube/wasmkube/runtime/agent/node"
)

// podCIDRFile keeps the node's pod range across restarts, so that an agent
// started while the API server is unreachable can set up its pod network
// and run its pods. A Node keeps its range for life: it changes only when
// the Node is deleted and made again.
const podCIDRFile = "podcidr"

// keptPodCIDR is the pod range an earlier run of the agent kept in dir.
func keptPodCIDR(dir string) (*net.IPNet, bool) {
	b, err := os.ReadFile(filepath.Join(dir, podCIDRFile))
	if err != nil {
		return nil, false
	}
	_, cidr, err := net.ParseCIDR(strings.TrimSpace(string(b)))
	return cidr, err == nil
}

// podCIDR returns the node's pod range: the one kept in dir if any, else
// the one the API server assigns, which is then kept.
func podCIDR(ctx context.Context, client kubernetes.Interface, nodeName, dir string, log *slog.Logger) (*net.IPNet, error) {
	path := filepath.Join(dir, podCIDRFile)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if _, cidr, perr := net.ParseCIDR(strings.TrimSpace(string(b))); perr == nil {
			return cidr, nil
		}
		log.Warn("agent: ignoring an unreadable kept pod CIDR", "file", path)
	case !errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("agent: read %s: %w", path, err)
	}
	cidr, err := node.WaitPodCIDR(ctx, client, nodeName)
	if err != nil {
		return nil, err
	}
	if err := atomicfile.Write(path, []byte(cidr.String()+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("agent: keep pod CIDR: %w", err)
	}
	return cidr, nil
}
