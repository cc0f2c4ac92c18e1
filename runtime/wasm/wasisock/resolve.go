package wasisock

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"
)

// resolver answers the names guests ask for with sock_getaddrinfo.
type resolver struct {
	// servers are asked in order; nil means Go's net.DefaultResolver,
	// which follows the host's own configuration.
	servers []*net.Resolver
	search  []string
	ndots   int
	// hosts are the names of a hosts file, answered first.
	hosts map[string][]netip.Addr
}

func defaultResolver() *resolver { return &resolver{} }

// resolvConf is the part of resolv.conf(5) the guest resolver honours.
type resolvConf struct {
	nameservers []netip.Addr
	search      []string
	ndots       int
}

// WithResolvConf makes the Table resolve guest names the way a resolver
// configured by the resolv.conf(5) file at path would: its nameserver
// addresses (asked in order, on port 53), its search list and its ndots
// option. Other options are ignored. The file is read once, here; a file
// without any nameserver is an error.
func WithResolvConf(path string) TableOption {
	return func(c *tableConfig) error {
		data, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("resolv.conf: %w", err)
		}
		conf, err := parseResolvConf(data)
		if err != nil {
			return fmt.Errorf("resolv.conf %s: %w", path, err)
		}
		c.resolver = newConfResolver(conf, "53")
		return nil
	}
}

// parseResolvConf reads the few lines the guest resolver needs. It is not
// miekg/dns's parser, which the node's DNS server uses, because that package
// would add 200 KB to every pod's sandbox process for these 40 lines.
func parseResolvConf(data []byte) (resolvConf, error) {
	conf := resolvConf{ndots: 1}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		if i := strings.IndexAny(line, "#;"); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "nameserver":
			if len(f) < 2 {
				continue
			}
			a, err := netip.ParseAddr(f[1])
			if err != nil {
				return conf, fmt.Errorf("nameserver %q: %w", f[1], err)
			}
			conf.nameservers = append(conf.nameservers, a)
		case "search", "domain":
			// The last search or domain line wins, as in glibc.
			conf.search = nil
			for _, d := range f[1:] {
				conf.search = append(conf.search, strings.TrimSuffix(d, "."))
			}
		case "options":
			for _, o := range f[1:] {
				if v, ok := strings.CutPrefix(o, "ndots:"); ok {
					n, err := strconv.Atoi(v)
					if err != nil || n < 0 {
						return conf, fmt.Errorf("option %q: not a count", o)
					}
					conf.ndots = min(n, 15)
				}
			}
		}
	}
	if err := sc.Err(); err != nil {
		return conf, err
	}
	if len(conf.nameservers) == 0 {
		return conf, errors.New("no nameserver")
	}
	return conf, nil
}

// newConfResolver asks conf's nameservers on port. Each server gets its own
// Go resolver whose Dial ignores the host's configuration and always
// reaches that server, so the host's resolv.conf plays no part.
func newConfResolver(conf resolvConf, port string) *resolver {
	r := &resolver{search: conf.search, ndots: conf.ndots}
	for _, ns := range conf.nameservers {
		addr := net.JoinHostPort(ns.String(), port)
		r.servers = append(r.servers, &net.Resolver{
			PreferGo: true,
			Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, network, addr)
			},
		})
	}
	return r
}

// lookup resolves host to its addresses; network is "ip", "ip4" or "ip6".
func (r *resolver) lookup(ctx context.Context, network, host string) ([]netip.Addr, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{a.Unmap()}, nil
	}
	if addrs := fromHosts(r.hosts, network, host); len(addrs) > 0 {
		return addrs, nil
	}
	if len(r.servers) == 0 {
		return net.DefaultResolver.LookupNetIP(ctx, network, host)
	}
	var lastErr error
	for _, name := range r.candidates(host) {
		addrs, err := r.ask(ctx, network, name)
		if err == nil && len(addrs) > 0 {
			return addrs, nil
		}
		var dnsErr *net.DNSError
		if err != nil && !(errors.As(err, &dnsErr) && dnsErr.IsNotFound) {
			return nil, err
		}
		lastErr = err
	}
	if lastErr == nil {
		lastErr = &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return nil, lastErr
}

// candidates lists the absolute names tried for host, in resolv.conf(5)
// order: the name as given first when it has at least ndots dots, then
// with each search domain, else the other way round.
func (r *resolver) candidates(host string) []string {
	if strings.HasSuffix(host, ".") {
		return []string{host}
	}
	var withSearch []string
	for _, d := range r.search {
		withSearch = append(withSearch, host+"."+d+".")
	}
	if strings.Count(host, ".") >= r.ndots {
		return append([]string{host + "."}, withSearch...)
	}
	return append(withSearch, host+".")
}

// ask tries the servers in order, moving on when one fails without an
// answer (a name that does not exist is an answer).
func (r *resolver) ask(ctx context.Context, network, name string) ([]netip.Addr, error) {
	var err error
	for _, s := range r.servers {
		qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		var addrs []netip.Addr
		addrs, err = s.LookupNetIP(qctx, network, name)
		cancel()
		var dnsErr *net.DNSError
		if err == nil || (errors.As(err, &dnsErr) && dnsErr.IsNotFound) || ctx.Err() != nil {
			return addrs, err
		}
	}
	return nil, err
}
