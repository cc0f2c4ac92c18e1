package wasisock

import (
	"bufio"
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"strings"
)

// WithHostsFile makes the Table answer the names of the hosts(5) file at
// path before asking any nameserver, as the C library does with
// "files dns": a pod's /etc/hosts names localhost and the pod itself,
// which cluster DNS does not. The file is read once, here.
func WithHostsFile(path string) TableOption {
	return func(c *tableConfig) error {
		data, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("hosts file: %w", err)
		}
		c.hosts = parseHosts(data)
		return nil
	}
}

// parseHosts maps each lower-cased name of a hosts file to its addresses,
// in the file's order; lines it cannot read are skipped, as resolvers do.
func parseHosts(data []byte) map[string][]netip.Addr {
	hosts := map[string][]netip.Addr{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		a, err := netip.ParseAddr(f[0])
		if err != nil {
			continue
		}
		for _, name := range f[1:] {
			name = strings.ToLower(strings.TrimSuffix(name, "."))
			hosts[name] = append(hosts[name], a.Unmap())
		}
	}
	return hosts
}

// fromHosts is host's addresses of the family network asks for ("ip",
// "ip4" or "ip6") in the hosts file.
func fromHosts(hosts map[string][]netip.Addr, network, host string) []netip.Addr {
	var out []netip.Addr
	for _, a := range hosts[strings.ToLower(strings.TrimSuffix(host, "."))] {
		if network == "ip" || (network == "ip4") == a.Is4() {
			out = append(out, a)
		}
	}
	return out
}
