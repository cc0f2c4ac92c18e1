package wasisock

import (
	"context"
	"encoding/binary"
	"net/netip"

	"github.com/tetratelabs/wazero/api"
	"golang.org/x/sys/unix"
)

// Values of WasmEdge's socket extension (its wasi_snapshot_preview1 witx
// additions), which guest libraries pass and expect.
const (
	afInet4 = 1
	afInet6 = 2

	sockDgram  = 1
	sockStream = 2

	errnoAfnosupport = 5
	errnoNotconn     = 53

	riflagPeek        = 1
	riflagWaitall     = 2
	roflagTruncated   = 1
	addrStorageSize   = 128
	getsockoptLenHint = 256
)

// extFunc is a socket-extension function: wazero has no implementation to
// fall back to, so without a Table the guest gets ENOSYS.
type extFunc struct {
	params []string
	fn     func(ctx context.Context, t *Table, mod api.Module, stack []uint64) uint32
}

func extensions() map[string]extFunc {
	return map[string]extFunc{
		"sock_open":         {[]string{"af", "socktype", "result.fd"}, sockOpen},
		"sock_bind":         {[]string{"fd", "addr", "port"}, sockBind},
		"sock_listen":       {[]string{"fd", "backlog"}, sockListen},
		"sock_connect":      {[]string{"fd", "addr", "port"}, sockConnect},
		"sock_getsockopt":   {[]string{"fd", "level", "name", "value", "value_len"}, sockGetsockopt},
		"sock_setsockopt":   {[]string{"fd", "level", "name", "value", "value_len"}, sockSetsockopt},
		"sock_getlocaladdr": {[]string{"fd", "addr", "result.port"}, sockGetlocaladdr},
		"sock_getpeeraddr":  {[]string{"fd", "addr", "result.port"}, sockGetpeeraddr},
		"sock_recv_from": {[]string{"fd", "ri_data", "ri_data_len", "addr", "ri_flags",
			"result.port", "result.ro_datalen", "result.ro_flags"}, sockRecvFrom},
		"sock_send_to": {[]string{"fd", "si_data", "si_data_len", "addr", "port", "si_flags",
			"result.so_datalen"}, sockSendTo},
		"sock_getaddrinfo": {[]string{"node", "node_len", "service", "service_len", "hints",
			"res", "max_res_len", "result.res_len"}, sockGetaddrinfo},
	}
}

func arg(stack []uint64, i int) uint32 { return uint32(stack[i]) }

// sock_open(af, socktype, result.fd) -> errno
func sockOpen(_ context.Context, t *Table, mod api.Module, stack []uint64) uint32 {
	var domain, typ int
	switch arg(stack, 0) {
	case afInet4:
		domain = unix.AF_INET
	case afInet6:
		domain = unix.AF_INET6
	default:
		return errnoAfnosupport
	}
	switch arg(stack, 1) {
	case sockDgram:
		typ = unix.SOCK_DGRAM
	case sockStream:
		typ = unix.SOCK_STREAM
	default:
		return errnoInval
	}
	hfd, err := unix.Socket(domain, typ|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return toErrno(err)
	}
	gfd, ok := t.add(&socket{hostFD: hfd, dgram: typ == unix.SOCK_DGRAM, inet6: domain == unix.AF_INET6})
	if !ok {
		_ = unix.Close(hfd)
		return errnoBadf
	}
	if !mod.Memory().WriteUint32Le(arg(stack, 2), uint32(gfd)) {
		if s, ok := t.remove(gfd); ok {
			_ = unix.Close(s.hostFD)
		}
		return errnoFault
	}
	return errnoSuccess
}

// readAddr reads the address buffer {buf, buf_len} at ptr: 4 or 16 bytes
// of IPv4 or IPv6 address, or a 128-byte storage whose first two bytes
// (little-endian) are the family and whose address follows.
func readAddr(mem api.Memory, ptr uint32) (netip.Addr, uint32) {
	hdr, ok := mem.Read(ptr, 8)
	if !ok {
		return netip.Addr{}, errnoFault
	}
	buf, ok := mem.Read(le32(hdr), le32(hdr[4:]))
	if !ok {
		return netip.Addr{}, errnoFault
	}
	switch len(buf) {
	case 4:
		return netip.AddrFrom4([4]byte(buf)), errnoSuccess
	case 16:
		return netip.AddrFrom16([16]byte(buf)), errnoSuccess
	case addrStorageSize:
		switch binary.LittleEndian.Uint16(buf) {
		case afInet4:
			return netip.AddrFrom4([4]byte(buf[2:6])), errnoSuccess
		case afInet6:
			return netip.AddrFrom16([16]byte(buf[2:18])), errnoSuccess
		}
		return netip.Addr{}, errnoAfnosupport
	}
	return netip.Addr{}, errnoInval
}

// writeAddr fills the address buffer {buf, buf_len} at ptr with a, in the
// form its length asks for (see readAddr).
func writeAddr(mem api.Memory, ptr uint32, a netip.Addr) uint32 {
	hdr, ok := mem.Read(ptr, 8)
	if !ok {
		return errnoFault
	}
	buf, ok := mem.Read(le32(hdr), le32(hdr[4:]))
	if !ok {
		return errnoFault
	}
	switch {
	case len(buf) == addrStorageSize:
		clear(buf)
		if a.Is4() {
			binary.LittleEndian.PutUint16(buf, afInet4)
			b := a.As4()
			copy(buf[2:], b[:])
		} else {
			binary.LittleEndian.PutUint16(buf, afInet6)
			b := a.As16()
			copy(buf[2:], b[:])
		}
	case len(buf) == 4 && a.Is4():
		b := a.As4()
		copy(buf, b[:])
	case len(buf) == 16:
		b := a.As16()
		copy(buf, b[:])
	default:
		return errnoInval
	}
	return errnoSuccess
}

// sockaddrFor builds the host address for a guest socket, mapping an IPv4
// address onto an AF_INET6 socket and unmapping the reverse.
func sockaddrFor(s *socket, a netip.Addr, port uint32) (unix.Sockaddr, uint32) {
	if port > 0xFFFF {
		return nil, errnoInval
	}
	if s.inet6 {
		return &unix.SockaddrInet6{Port: int(port), Addr: a.As16()}, errnoSuccess
	}
	a = a.Unmap()
	if !a.Is4() {
		return nil, errnoAfnosupport
	}
	return &unix.SockaddrInet4{Port: int(port), Addr: a.As4()}, errnoSuccess
}

func fromSockaddr(sa unix.Sockaddr) (netip.Addr, int, bool) {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrFrom4(sa.Addr), sa.Port, true
	case *unix.SockaddrInet6:
		return netip.AddrFrom16(sa.Addr), sa.Port, true
	}
	return netip.Addr{}, 0, false
}

// socketArg resolves the fd argument; a descriptor that is not a socket
// of the table is EBADF (wazero's files are not sockets).
func socketArg(t *Table, stack []uint64) (*socket, uint32) {
	s, ok := t.lookup(int32(arg(stack, 0)))
	if !ok {
		return nil, errnoBadf
	}
	return s, errnoSuccess
}

// sock_bind(fd, addr, port) -> errno
func sockBind(_ context.Context, t *Table, mod api.Module, stack []uint64) uint32 {
	s, sa, errno := socketAndAddr(t, mod, stack)
	if errno != errnoSuccess {
		return errno
	}
	return toErrnoOrSuccess(unix.Bind(s.hostFD, sa))
}

// socketAndAddr reads the (fd, addr, port) arguments of sock_bind and
// sock_connect: the guest's socket and the address for the host's call.
func socketAndAddr(t *Table, mod api.Module, stack []uint64) (*socket, unix.Sockaddr, uint32) {
	s, errno := socketArg(t, stack)
	if errno != errnoSuccess {
		return nil, nil, errno
	}
	a, errno := readAddr(mod.Memory(), arg(stack, 1))
	if errno != errnoSuccess {
		return nil, nil, errno
	}
	sa, errno := sockaddrFor(s, a, arg(stack, 2))
	return s, sa, errno
}

// sock_listen(fd, backlog) -> errno
func sockListen(_ context.Context, t *Table, _ api.Module, stack []uint64) uint32 {
	s, errno := socketArg(t, stack)
	if errno != errnoSuccess {
		return errno
	}
	if err := unix.Listen(s.hostFD, max(int(int32(arg(stack, 1))), 0)); err != nil {
		return toErrno(err)
	}
	t.mu.Lock()
	s.listener = true
	t.mu.Unlock()
	return errnoSuccess
}

// sock_connect(fd, addr, port) -> errno
//
// A non-blocking socket answers EINPROGRESS while the handshake runs; the
// guest waits for FD_WRITE readiness and reads SO_ERROR. A blocking socket
// waits here and returns the outcome.
func sockConnect(ctx context.Context, t *Table, mod api.Module, stack []uint64) uint32 {
	s, sa, errno := socketAndAddr(t, mod, stack)
	if errno != errnoSuccess {
		return errno
	}
	err := unix.Connect(s.hostFD, sa)
	if err == nil {
		return errnoSuccess
	}
	if (err != unix.EINPROGRESS && err != unix.EINTR) || s.nonblock {
		return toErrno(err)
	}
	if werr := t.wait(ctx, s.hostFD, unix.POLLOUT); werr != nil {
		return toErrno(werr)
	}
	soErr, err := unix.GetsockoptInt(s.hostFD, unix.SOL_SOCKET, unix.SO_ERROR)
	if err != nil {
		return toErrno(err)
	}
	if soErr != 0 {
		return toErrno(unix.Errno(soErr))
	}
	return errnoSuccess
}

func toErrnoOrSuccess(err error) uint32 {
	if err != nil {
		return toErrno(err)
	}
	return errnoSuccess
}

// addrGetter writes the address getname returns into the guest's address
// buffer and its port, as a u32, at result.port.
func addrGetter(getname func(fd int) (unix.Sockaddr, error)) func(context.Context, *Table, api.Module, []uint64) uint32 {
	return func(_ context.Context, t *Table, mod api.Module, stack []uint64) uint32 {
		s, errno := socketArg(t, stack)
		if errno != errnoSuccess {
			return errno
		}
		sa, err := getname(s.hostFD)
		if err != nil {
			return toErrno(err)
		}
		a, port, ok := fromSockaddr(sa)
		if !ok {
			return errnoNotconn
		}
		if errno := writeAddr(mod.Memory(), arg(stack, 1), a); errno != errnoSuccess {
			return errno
		}
		if !mod.Memory().WriteUint32Le(arg(stack, 2), uint32(port)) {
			return errnoFault
		}
		return errnoSuccess
	}
}

var (
	// sock_getlocaladdr(fd, addr, result.port) -> errno
	sockGetlocaladdr = addrGetter(unix.Getsockname)
	// sock_getpeeraddr(fd, addr, result.port) -> errno
	sockGetpeeraddr = addrGetter(unix.Getpeername)
)

// datagramArgs reads the (fd, iovs, iovs_len) arguments that open
// sock_recv_from and sock_send_to: a socket that is not a listener, and its
// buffers in the guest's memory.
func datagramArgs(t *Table, mod api.Module, stack []uint64) (*socket, api.Memory, [][]byte, uint32) {
	s, errno := socketArg(t, stack)
	if errno != errnoSuccess {
		return nil, nil, nil, errno
	}
	if s.listener {
		return nil, nil, nil, errnoNotsup
	}
	mem := mod.Memory()
	bufs, ok := iovecs(mem, arg(stack, 1), arg(stack, 2))
	if !ok {
		return nil, nil, nil, errnoFault
	}
	return s, mem, bufs, errnoSuccess
}

// sock_recv_from(fd, ri_data, ri_data_len, addr, ri_flags, result.port,
// result.ro_datalen, result.ro_flags) -> errno; the port is a u16.
func sockRecvFrom(ctx context.Context, t *Table, mod api.Module, stack []uint64) uint32 {
	s, mem, bufs, errno := datagramArgs(t, mod, stack)
	if errno != errnoSuccess {
		return errno
	}
	riflags := arg(stack, 4)
	if riflags&^(riflagPeek|riflagWaitall) != 0 {
		return errnoInval
	}
	var flags int
	if riflags&riflagPeek != 0 {
		flags |= unix.MSG_PEEK
	}
	if riflags&riflagWaitall != 0 {
		flags |= unix.MSG_WAITALL
	}
	var recvflags int
	var from unix.Sockaddr
	n, errno := transfer(ctx, t, s, unix.POLLIN, func() (int, error) {
		var n int
		var err error
		n, _, recvflags, from, err = unix.RecvmsgBuffers(s.hostFD, bufs, nil, flags)
		return n, err
	})
	if errno != errnoSuccess {
		return errno
	}
	if a, port, ok := fromSockaddr(from); ok {
		if errno := writeAddr(mem, arg(stack, 3), a); errno != errnoSuccess {
			return errno
		}
		if !mem.WriteUint16Le(arg(stack, 5), uint16(port)) {
			return errnoFault
		}
	}
	var roflags uint16
	if recvflags&unix.MSG_TRUNC != 0 {
		roflags = roflagTruncated
	}
	if !mem.WriteUint32Le(arg(stack, 6), uint32(n)) || !mem.WriteUint16Le(arg(stack, 7), roflags) {
		return errnoFault
	}
	return errnoSuccess
}

// sock_send_to(fd, si_data, si_data_len, addr, port, si_flags,
// result.so_datalen) -> errno
func sockSendTo(ctx context.Context, t *Table, mod api.Module, stack []uint64) uint32 {
	s, mem, bufs, errno := datagramArgs(t, mod, stack)
	if errno != errnoSuccess {
		return errno
	}
	a, errno := readAddr(mem, arg(stack, 3))
	if errno != errnoSuccess {
		return errno
	}
	to, errno := sockaddrFor(s, a, arg(stack, 4))
	if errno != errnoSuccess {
		return errno
	}
	n, errno := transfer(ctx, t, s, unix.POLLOUT, func() (int, error) {
		return unix.SendmsgBuffers(s.hostFD, bufs, nil, to, unix.MSG_NOSIGNAL)
	})
	if errno != errnoSuccess {
		return errno
	}
	if !mem.WriteUint32Le(arg(stack, 6), uint32(n)) {
		return errnoFault
	}
	return errnoSuccess
}
