//go:build wasip1

package wasinet

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"
)

// Dial connects to address on the named network: "tcp", "tcp4", "tcp6",
// "udp", "udp4" or "udp6". The host part may be a name, resolved by the
// host (see LookupNetIP), or an IP address.
func Dial(network, address string) (net.Conn, error) {
	return DialContext(context.Background(), network, address)
}

// DialContext is Dial bounded by ctx: its deadline and cancellation stop
// name resolution between addresses and a connection in progress.
func DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	opErr := func(err error) error {
		return &net.OpError{Op: "dial", Net: network, Addr: &unresolvedAddr{network, address}, Err: err}
	}
	socktype, family, err := parseNetwork(network)
	if err != nil {
		return nil, opErr(err)
	}
	host, portStr, err := net.SplitHostPort(address)
	if err != nil {
		return nil, opErr(err)
	}
	port, err := net.LookupPort(network, portStr)
	if err != nil {
		return nil, opErr(err)
	}
	ips, err := lookup(ctx, host, family, socktype)
	if err != nil {
		return nil, opErr(err)
	}
	var firstErr error
	for _, ip := range ips {
		if err := ctx.Err(); err != nil {
			return nil, opErr(err)
		}
		c, err := dialAddr(ctx, socktype, ip, port)
		if err == nil {
			return c, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return nil, opErr(firstErr)
}

// parseNetwork returns the socket type and the address family (0 for
// either) a network name asks for.
func parseNetwork(network string) (socktype, family uint8, err error) {
	switch network {
	case "tcp", "udp":
	case "tcp4", "udp4":
		family = afInet4
	case "tcp6", "udp6":
		family = afInet6
	default:
		return 0, 0, net.UnknownNetworkError(network)
	}
	socktype = sockStream
	if network[0] == 'u' {
		socktype = sockDgram
	}
	return socktype, family, nil
}

func lookup(ctx context.Context, host string, family, socktype uint8) ([]netip.Addr, error) {
	if host == "" {
		host = "localhost"
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{a}, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	raw, err := getaddrinfo(host, family, socktype, 16)
	if err != nil {
		return nil, &net.DNSError{Err: err.Error(), Name: host, IsNotFound: true}
	}
	addrs := make([]netip.Addr, 0, len(raw))
	seen := map[netip.Addr]bool{}
	for _, b := range raw {
		a, ok := netip.AddrFromSlice(b)
		if ok && !seen[a] {
			seen[a] = true
			addrs = append(addrs, a)
		}
	}
	if len(addrs) == 0 {
		return nil, &net.DNSError{Err: "no addresses", Name: host, IsNotFound: true}
	}
	return addrs, nil
}

// LookupNetIP resolves host on the host, through sock_getaddrinfo, with
// the node's or the pod's DNS configuration; network is "ip", "ip4" or
// "ip6". IPv4 addresses come first.
func LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	var family uint8
	switch network {
	case "ip":
	case "ip4":
		family = afInet4
	case "ip6":
		family = afInet6
	default:
		return nil, net.UnknownNetworkError(network)
	}
	return lookup(ctx, host, family, sockStream)
}

// dialAddr opens a non-blocking socket, starts connecting and waits for
// the outcome in Go's netpoller (FD_WRITE readiness, then SO_ERROR), so a
// goroutine dialing does not block the others.
func dialAddr(ctx context.Context, socktype uint8, ip netip.Addr, port int) (net.Conn, error) {
	ip = ip.Unmap()
	family := int32(afInet6)
	if ip.Is4() {
		family = afInet4
	}
	fd, err := openSocket(family, int32(socktype))
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	if err := syscall.SetNonblock(fd, true); err != nil {
		syscall.Close(fd)
		return nil, os.NewSyscallError("setnonblock", err)
	}
	inProgress := false
	switch err := connect(fd, ip.AsSlice(), port); {
	case err == nil:
	case errors.Is(err, syscall.EINPROGRESS):
		inProgress = true
	default:
		syscall.Close(fd)
		return nil, os.NewSyscallError("connect", err)
	}
	f := os.NewFile(uintptr(fd), "socket")
	defer f.Close()
	if inProgress {
		if err := waitConnected(ctx, f); err != nil {
			return nil, err
		}
	}
	c, err := net.FileConn(f)
	if err != nil {
		return nil, err
	}
	return newConn(c, fd, socktype), nil
}

func waitConnected(ctx context.Context, f *os.File) error {
	if d, ok := ctx.Deadline(); ok {
		if err := f.SetWriteDeadline(d); err != nil {
			return err
		}
	}
	stop := context.AfterFunc(ctx, func() { _ = f.SetWriteDeadline(time.Unix(1, 0)) })
	defer stop()
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var connErr error
	if err := rc.Write(func(fd uintptr) bool {
		connErr = pendingError(int(fd))
		return !errors.Is(connErr, syscall.EINPROGRESS) && !errors.Is(connErr, syscall.EAGAIN)
	}); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return err
	}
	if connErr != nil {
		return os.NewSyscallError("connect", connErr)
	}
	return nil
}

// Listen listens on address ("tcp", "tcp4" or "tcp6"); a missing host is
// every address. Guests of a wasmkube pod usually get their listeners
// preopened instead (net.FileListener(os.NewFile(3, ...))).
func Listen(network, address string) (net.Listener, error) {
	opErr := func(err error) error {
		return &net.OpError{Op: "listen", Net: network, Addr: &unresolvedAddr{network, address}, Err: err}
	}
	socktype, family, err := parseNetwork(network)
	if err != nil || socktype != sockStream {
		return nil, opErr(net.UnknownNetworkError(network))
	}
	host, portStr, err := net.SplitHostPort(address)
	if err != nil {
		return nil, opErr(err)
	}
	port, err := net.LookupPort(network, portStr)
	if err != nil {
		return nil, opErr(err)
	}
	ip := netip.IPv4Unspecified()
	if family == afInet6 {
		ip = netip.IPv6Unspecified()
	}
	if host != "" {
		ips, err := lookup(context.Background(), host, family, socktype)
		if err != nil {
			return nil, opErr(err)
		}
		ip = ips[0].Unmap()
	}
	fam := int32(afInet6)
	if ip.Is4() {
		fam = afInet4
	}
	fd, err := openSocket(fam, sockStream)
	if err != nil {
		return nil, opErr(os.NewSyscallError("socket", err))
	}
	if err := bind(fd, ip.AsSlice(), port); err != nil {
		syscall.Close(fd)
		return nil, opErr(os.NewSyscallError("bind", err))
	}
	if err := listen(fd, 128); err != nil {
		syscall.Close(fd)
		return nil, opErr(os.NewSyscallError("listen", err))
	}
	if err := syscall.SetNonblock(fd, true); err != nil {
		syscall.Close(fd)
		return nil, opErr(os.NewSyscallError("setnonblock", err))
	}
	f := os.NewFile(uintptr(fd), "listener")
	defer f.Close()
	return net.FileListener(f)
}

type unresolvedAddr struct{ network, address string }

func (a *unresolvedAddr) Network() string { return a.network }
func (a *unresolvedAddr) String() string  { return a.address }

// conn is a connection from net.FileConn, which on wasip1 knows neither of
// its addresses: they come from sock_getlocaladdr and sock_getpeeraddr.
type conn struct {
	net.Conn
	laddr, raddr net.Addr
}

func newConn(c net.Conn, fd int, socktype uint8) net.Conn {
	addr := func(peer bool) net.Addr {
		ip, port, err := sockName(fd, peer)
		if err != nil {
			return nil
		}
		if socktype == sockDgram {
			return &net.UDPAddr{IP: ip, Port: port}
		}
		return &net.TCPAddr{IP: ip, Port: port}
	}
	return &conn{Conn: c, laddr: addr(false), raddr: addr(true)}
}

func (c *conn) LocalAddr() net.Addr  { return c.laddr }
func (c *conn) RemoteAddr() net.Addr { return c.raddr }

// CloseWrite shuts down the writing side of a TCP connection.
func (c *conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return &net.OpError{Op: "close", Net: "udp", Err: syscall.ENOTSUP}
}

// Unwrap returns the *net.TCPConn or *net.UDPConn underneath.
func (c *conn) Unwrap() net.Conn { return c.Conn }
