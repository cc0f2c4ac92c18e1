package wasisock

import (
	"context"

	"github.com/tetratelabs/wazero/api"
	"golang.org/x/sys/unix"
)

func setErrno(stack []uint64, errno uint32) bool {
	stack[0] = uint64(errno)
	return true
}

// iovecs maps a guest iovec array onto guest memory, without copying.
func iovecs(mem api.Memory, iovs, n uint32) ([][]byte, bool) {
	raw, ok := mem.Read(iovs, n*8)
	if !ok {
		return nil, false
	}
	bufs := make([][]byte, 0, n)
	for i := uint32(0); i < n; i++ {
		off := le32(raw[i*8:])
		l := le32(raw[i*8+4:])
		if l == 0 {
			continue
		}
		b, ok := mem.Read(off, l)
		if !ok {
			return nil, false
		}
		bufs = append(bufs, b)
	}
	return bufs, true
}

func le32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

// transfer runs op on the socket's host descriptor, waiting for readiness
// when the guest asked for a blocking descriptor.
func transfer(ctx context.Context, t *Table, s *socket, events int16, op func() (int, error)) (int, uint32) {
	for {
		n, err := op()
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN && !s.nonblock {
			if werr := t.wait(ctx, s.hostFD, events); werr != nil {
				return 0, toErrno(werr)
			}
			continue
		}
		if err != nil {
			return 0, toErrno(err)
		}
		return n, errnoSuccess
	}
}

func readv(ctx context.Context, t *Table, mod api.Module, s *socket, iovs, n, resultPtr uint32) uint32 {
	bufs, ok := iovecs(mod.Memory(), iovs, n)
	if !ok {
		return errnoFault
	}
	got, errno := transfer(ctx, t, s, unix.POLLIN, func() (int, error) { return unix.Readv(s.hostFD, bufs) })
	if errno != errnoSuccess {
		return errno
	}
	if !mod.Memory().WriteUint32Le(resultPtr, uint32(got)) {
		return errnoFault
	}
	return errnoSuccess
}

func writev(ctx context.Context, t *Table, mod api.Module, s *socket, iovs, n, resultPtr uint32) uint32 {
	bufs, ok := iovecs(mod.Memory(), iovs, n)
	if !ok {
		return errnoFault
	}
	put, errno := transfer(ctx, t, s, unix.POLLOUT, func() (int, error) { return unix.Writev(s.hostFD, bufs) })
	if errno != errnoSuccess {
		return errno
	}
	if !mod.Memory().WriteUint32Le(resultPtr, uint32(put)) {
		return errnoFault
	}
	return errnoSuccess
}

func conn(t *Table, fd uint64) (*socket, bool) {
	return t.lookup(int32(uint32(fd)))
}

// onStream answers a call on the accepted connection behind stack[0] with
// op's errno. It reports false, leaving the call to wazero, when the fd is
// not one of the guest's sockets; a listener has no stream (ENOTSUP).
func onStream(t *Table, stack []uint64, op func(s *socket) uint32) bool {
	s, ok := conn(t, stack[0])
	if !ok {
		return false
	}
	if s.listener {
		return setErrno(stack, errnoNotsup)
	}
	return setErrno(stack, op(s))
}

// fd_read(fd, iovs, iovs_len, result.nread) -> errno
func fdRead(ctx context.Context, t *Table, mod api.Module, stack []uint64) bool {
	return onStream(t, stack, func(s *socket) uint32 {
		return readv(ctx, t, mod, s, uint32(stack[1]), uint32(stack[2]), uint32(stack[3]))
	})
}

// fd_write(fd, iovs, iovs_len, result.nwritten) -> errno
func fdWrite(ctx context.Context, t *Table, mod api.Module, stack []uint64) bool {
	return onStream(t, stack, func(s *socket) uint32 {
		return writev(ctx, t, mod, s, uint32(stack[1]), uint32(stack[2]), uint32(stack[3]))
	})
}

// sock_recv(fd, ri_data, ri_data_len, ri_flags, result.ro_datalen, result.ro_flags) -> errno
func sockRecv(ctx context.Context, t *Table, mod api.Module, stack []uint64) bool {
	return onStream(t, stack, func(s *socket) uint32 {
		if uint32(stack[3]) != 0 { // RECV_PEEK and RECV_WAITALL are not offered
			return errnoNotsup
		}
		if errno := readv(ctx, t, mod, s, uint32(stack[1]), uint32(stack[2]), uint32(stack[4])); errno != errnoSuccess {
			return errno
		}
		if !mod.Memory().WriteUint16Le(uint32(stack[5]), 0) {
			return errnoFault
		}
		return errnoSuccess
	})
}

// sock_send(fd, si_data, si_data_len, si_flags, result.so_datalen) -> errno
func sockSend(ctx context.Context, t *Table, mod api.Module, stack []uint64) bool {
	return onStream(t, stack, func(s *socket) uint32 {
		return writev(ctx, t, mod, s, uint32(stack[1]), uint32(stack[2]), uint32(stack[4]))
	})
}

// sock_shutdown(fd, how) -> errno; how: 1 = RD, 2 = WR.
func sockShutdown(_ context.Context, t *Table, _ api.Module, stack []uint64) bool {
	s, ok := conn(t, stack[0])
	if !ok {
		return false
	}
	var how int
	switch uint32(stack[1]) {
	case 1:
		how = unix.SHUT_RD
	case 2:
		how = unix.SHUT_WR
	case 3:
		how = unix.SHUT_RDWR
	default:
		return setErrno(stack, errnoInval)
	}
	if err := unix.Shutdown(s.hostFD, how); err != nil {
		return setErrno(stack, toErrno(err))
	}
	return setErrno(stack, errnoSuccess)
}

// sock_accept(fd, flags, result.fd) -> errno
func sockAccept(ctx context.Context, t *Table, mod api.Module, stack []uint64) bool {
	s, ok := t.lookup(int32(uint32(stack[0])))
	if !ok {
		return false
	}
	if !s.listener {
		return setErrno(stack, errnoNotsup)
	}
	flags := uint32(stack[1])
	if flags&^fdflagNonblock != 0 {
		return setErrno(stack, errnoInval)
	}
	var nfd int
	_, errno := transfer(ctx, t, s, unix.POLLIN, func() (int, error) {
		var err error
		nfd, _, err = unix.Accept4(s.hostFD, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		return 0, err
	})
	if errno != errnoSuccess {
		return setErrno(stack, errno)
	}
	gfd, ok := t.add(&socket{hostFD: nfd, inet6: s.inet6, nonblock: flags&fdflagNonblock != 0})
	if !ok {
		_ = unix.Close(nfd)
		return setErrno(stack, errnoBadf)
	}
	if !mod.Memory().WriteUint32Le(uint32(stack[2]), uint32(gfd)) {
		return setErrno(stack, errnoFault)
	}
	return setErrno(stack, errnoSuccess)
}

// fd_close(fd) -> errno
func fdClose(_ context.Context, t *Table, _ api.Module, stack []uint64) bool {
	s, ok := t.remove(int32(uint32(stack[0])))
	if !ok {
		return false
	}
	if err := unix.Close(s.hostFD); err != nil {
		return setErrno(stack, toErrno(err))
	}
	return setErrno(stack, errnoSuccess)
}

// fd_fdstat_get(fd, result.stat) -> errno; fdstat is 24 bytes.
func fdFdstatGet(_ context.Context, t *Table, mod api.Module, stack []uint64) bool {
	s, ok := t.lookup(int32(uint32(stack[0])))
	if !ok {
		return false
	}
	buf, ok := mod.Memory().Read(uint32(stack[1]), 24)
	if !ok {
		return setErrno(stack, errnoFault)
	}
	clear(buf)
	buf[0] = s.filetype()
	if s.nonblock {
		buf[2] = fdflagNonblock
	}
	putLE64(buf[8:], rightsAll)
	putLE64(buf[16:], rightsAll)
	return setErrno(stack, errnoSuccess)
}

// fd_fdstat_set_flags(fd, flags) -> errno
func fdFdstatSetFlags(_ context.Context, t *Table, _ api.Module, stack []uint64) bool {
	s, ok := t.lookup(int32(uint32(stack[0])))
	if !ok {
		return false
	}
	flags := uint32(stack[1])
	if flags&^fdflagNonblock != 0 {
		return setErrno(stack, errnoNotsup)
	}
	t.mu.Lock()
	s.nonblock = flags&fdflagNonblock != 0
	t.mu.Unlock()
	return setErrno(stack, errnoSuccess)
}

// fd_filestat_get(fd, result.stat) -> errno; filestat is 64 bytes.
func fdFilestatGet(_ context.Context, t *Table, mod api.Module, stack []uint64) bool {
	s, ok := t.lookup(int32(uint32(stack[0])))
	if !ok {
		return false
	}
	buf, ok := mod.Memory().Read(uint32(stack[1]), 64)
	if !ok {
		return setErrno(stack, errnoFault)
	}
	clear(buf)
	buf[16] = s.filetype()
	return setErrno(stack, errnoSuccess)
}

// fd_prestat_get(fd, result.prestat) -> errno: a socket is not a preopened
// directory, and ENOTDIR (unlike EBADF) lets a preopen scan go on.
func fdPrestatGet(_ context.Context, t *Table, _ api.Module, stack []uint64) bool {
	if _, ok := t.lookup(int32(uint32(stack[0]))); !ok {
		return false
	}
	return setErrno(stack, errnoNotdir)
}

func putLE64(b []byte, v uint64) {
	for i := 0; i < 8; i++ {
		b[i] = byte(v >> (8 * i))
	}
}
