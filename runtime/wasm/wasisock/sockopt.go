package wasisock

import (
	"context"
	"encoding/binary"

	"github.com/tetratelabs/wazero/api"
	"golang.org/x/sys/unix"
)

// WasmEdge's socket option names, all at level SOL_SOCKET (0).
const (
	soReuseaddr  = 0
	soType       = 1
	soError      = 2
	soDontroute  = 3
	soBroadcast  = 4
	soSndbuf     = 5
	soRcvbuf     = 6
	soKeepalive  = 7
	soOobinline  = 8
	soLinger     = 9
	soRcvlowat   = 10
	soRcvtimeo   = 11
	soSndtimeo   = 12
	soAcceptconn = 13
)

// hostOption maps an integer-valued option to the host's; SO_LINGER and
// the timeouts are handled apart.
var hostOption = map[uint32]int{
	soReuseaddr: unix.SO_REUSEADDR, soType: unix.SO_TYPE, soError: unix.SO_ERROR,
	soDontroute: unix.SO_DONTROUTE, soBroadcast: unix.SO_BROADCAST, soSndbuf: unix.SO_SNDBUF,
	soRcvbuf: unix.SO_RCVBUF, soKeepalive: unix.SO_KEEPALIVE, soOobinline: unix.SO_OOBINLINE,
	soRcvlowat: unix.SO_RCVLOWAT, soAcceptconn: unix.SO_ACCEPTCONN,
}

// sock_getsockopt(fd, level, name, value, value_len) -> errno
//
// WasmEdge reads value_len as a pointer to the buffer's length and writes
// the length used back; some guest libraries (Go's dispatchrun/net) pass
// the length itself. A value below getsockoptLenHint is taken as a length,
// since no guest keeps data in its first 256 bytes; otherwise it is a
// pointer.
func sockGetsockopt(_ context.Context, t *Table, mod api.Module, stack []uint64) uint32 {
	s, errno := socketArg(t, stack)
	if errno != errnoSuccess {
		return errno
	}
	mem := mod.Memory()
	size, sizePtr := arg(stack, 4), uint32(0)
	if size >= getsockoptLenHint {
		sizePtr = size
		var ok bool
		if size, ok = mem.ReadUint32Le(sizePtr); !ok {
			return errnoFault
		}
	}
	if arg(stack, 1) != 0 {
		return errnoNoprotoopt
	}
	buf, ok := mem.Read(arg(stack, 3), size)
	if !ok {
		return errnoFault
	}
	var used uint32
	switch name := arg(stack, 2); name {
	case soLinger:
		if len(buf) < 8 {
			return errnoInval
		}
		l, err := unix.GetsockoptLinger(s.hostFD, unix.SOL_SOCKET, unix.SO_LINGER)
		if err != nil {
			return toErrno(err)
		}
		binary.LittleEndian.PutUint32(buf, uint32(l.Onoff))
		binary.LittleEndian.PutUint32(buf[4:], uint32(l.Linger))
		used = 8
	case soRcvtimeo, soSndtimeo:
		// Blocking calls are emulated on non-blocking host sockets, so
		// kernel timeouts would never apply.
		return errnoNotsup
	default:
		opt, ok := hostOption[name]
		if !ok {
			return errnoNoprotoopt
		}
		if len(buf) < 4 {
			return errnoInval
		}
		v, err := unix.GetsockoptInt(s.hostFD, unix.SOL_SOCKET, opt)
		if err != nil {
			return toErrno(err)
		}
		switch name {
		case soType:
			v = sockStream
			if s.dgram {
				v = sockDgram
			}
		case soError:
			if v != 0 {
				v = int(toErrno(unix.Errno(v)))
			}
		}
		binary.LittleEndian.PutUint32(buf, uint32(int32(v)))
		used = 4
	}
	if sizePtr != 0 && !mem.WriteUint32Le(sizePtr, used) {
		return errnoFault
	}
	return errnoSuccess
}

// sock_setsockopt(fd, level, name, value, value_len) -> errno
func sockSetsockopt(_ context.Context, t *Table, mod api.Module, stack []uint64) uint32 {
	s, errno := socketArg(t, stack)
	if errno != errnoSuccess {
		return errno
	}
	if arg(stack, 1) != 0 {
		return errnoNoprotoopt
	}
	buf, ok := mod.Memory().Read(arg(stack, 3), arg(stack, 4))
	if !ok {
		return errnoFault
	}
	switch name := arg(stack, 2); name {
	case soLinger:
		if len(buf) < 8 {
			return errnoInval
		}
		l := &unix.Linger{Onoff: int32(le32(buf)), Linger: int32(le32(buf[4:]))}
		return toErrnoOrSuccess(unix.SetsockoptLinger(s.hostFD, unix.SOL_SOCKET, unix.SO_LINGER, l))
	case soRcvtimeo, soSndtimeo:
		return errnoNotsup
	default:
		opt, ok := hostOption[name]
		if !ok {
			return errnoNoprotoopt
		}
		if len(buf) < 4 {
			return errnoInval
		}
		return toErrnoOrSuccess(unix.SetsockoptInt(s.hostFD, unix.SOL_SOCKET, opt, int(int32(le32(buf)))))
	}
}
