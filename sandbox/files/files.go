package files

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/wasmkube/wasmkube/internal/atomicfile"
)

// File names inside the pod directory, as kubelet names them.
const (
	HostsFile      = "etc-hosts"
	ResolvConfFile = "resolv.conf"
)

// DefaultClusterDomain is Kubernetes' default cluster domain.
const DefaultClusterDomain = "cluster.local"

// HostAlias adds names for an address to the hosts file (a pod's
// spec.hostAliases).
type HostAlias struct {
	IP        string
	Hostnames []string
}

// Hosts describes the pod's hosts file.
type Hosts struct {
	IP       net.IP // the pod's IP
	Hostname string // the pod's hostname
	// FQDN, when the pod has a subdomain, is
	// <hostname>.<subdomain>.<namespace>.svc.<cluster domain>.
	FQDN    string
	Aliases []HostAlias
}

// WriteHosts writes podDir/etc-hosts and returns its path.
func WriteHosts(podDir string, h Hosts) (string, error) {
	if h.IP == nil || h.Hostname == "" {
		return "", fmt.Errorf("files: hosts for %s: pod IP and hostname are required", podDir)
	}
	var b bytes.Buffer
	// The same header and loopback block as kubelet, so tools that look for
	// "Kubernetes-managed" recognise the file.
	b.WriteString("# Kubernetes-managed hosts file.\n")
	b.WriteString("127.0.0.1\tlocalhost\n")
	b.WriteString("::1\tlocalhost ip6-localhost ip6-loopback\n")
	b.WriteString("fe00::0\tip6-localnet\n")
	b.WriteString("fe00::0\tip6-mcastprefix\n")
	b.WriteString("fe00::1\tip6-allnodes\n")
	b.WriteString("fe00::2\tip6-allrouters\n")
	if h.FQDN != "" {
		fmt.Fprintf(&b, "%s\t%s\t%s\n", h.IP, h.FQDN, h.Hostname)
	} else {
		fmt.Fprintf(&b, "%s\t%s\n", h.IP, h.Hostname)
	}
	if len(h.Aliases) > 0 {
		b.WriteString("\n# Entries added by HostAliases.\n")
		for _, a := range h.Aliases {
			if net.ParseIP(a.IP) == nil || len(a.Hostnames) == 0 {
				return "", fmt.Errorf("files: hosts for %s: bad host alias %+v", podDir, a)
			}
			fmt.Fprintf(&b, "%s\t%s\n", a.IP, strings.Join(a.Hostnames, "\t"))
		}
	}
	return writeAtomic(filepath.Join(podDir, HostsFile), b.Bytes())
}

// ResolvConf describes the pod's resolver configuration for the
// ClusterFirst DNS policy.
type ResolvConf struct {
	Nameserver    net.IP // the cluster DNS service IP
	Namespace     string // the pod's namespace, first search domain
	ClusterDomain string // DefaultClusterDomain when empty
}

// WriteResolvConf writes podDir/resolv.conf and returns its path.
func WriteResolvConf(podDir string, r ResolvConf) (string, error) {
	if r.Nameserver == nil || r.Namespace == "" {
		return "", fmt.Errorf("files: resolv.conf for %s: nameserver and namespace are required", podDir)
	}
	domain := r.ClusterDomain
	if domain == "" {
		domain = DefaultClusterDomain
	}
	// ndots:5 makes short names like "svc.ns" try the search list first,
	// which is what in-cluster names need.
	content := fmt.Sprintf("nameserver %s\nsearch %s.svc.%s svc.%s %s\noptions ndots:5\n",
		r.Nameserver, r.Namespace, domain, domain, domain)
	return writeAtomic(filepath.Join(podDir, ResolvConfFile), []byte(content))
}

// writeAtomic replaces path; the files are read by container users that
// are not root, hence 0644. They are not synced to the disk: they go with
// the pod's network namespace, which a reboot ends, and the sandbox made
// again after it writes them again.
func writeAtomic(path string, data []byte) (string, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", fmt.Errorf("files: %w", err)
	}
	if err := atomicfile.Replace(path, data, 0o644); err != nil {
		return "", fmt.Errorf("files: %w", err)
	}
	return path, nil
}
