package wasisock

import (
	"context"
	"encoding/binary"
	"time"

	"github.com/tetratelabs/wazero/api"
	"golang.org/x/sys/unix"
)

const (
	eventtypeClock   = 0
	eventtypeFdRead  = 1
	eventtypeFdWrite = 2

	subscriptionSize = 48
	eventSize        = 32
	eventHangup      = 1
)

type pollSub struct {
	userdata  uint64
	eventtype byte
	pfd       int // index into the ppoll set, or -1
}

// pollOneoff(in, out, nsubscriptions, result.nevents) -> errno
//
// It takes over the call when at least one subscription names a socket of
// the table; other fd subscriptions in the same call are reported ready at
// once (files always are), and calls without sockets stay wazero's.
func pollOneoff(ctx context.Context, t *Table, mod api.Module, stack []uint64) bool {
	in, out, nsubs, resultNevents := uint32(stack[0]), uint32(stack[1]), uint32(stack[2]), uint32(stack[3])
	if nsubs == 0 {
		return false
	}
	mem := mod.Memory()
	inBuf, ok := mem.Read(in, nsubs*subscriptionSize)
	if !ok {
		return false
	}
	le := binary.LittleEndian

	subs := make([]pollSub, nsubs)
	var fds []unix.PollFd
	var timeout time.Duration = -1
	immediate := false
	sockets := false
	for i := range subs {
		sb := inBuf[i*subscriptionSize:]
		sub := &subs[i]
		sub.userdata = le.Uint64(sb[0:])
		sub.eventtype = sb[8]
		sub.pfd = -1
		switch sub.eventtype {
		case eventtypeClock:
			if le.Uint16(sb[40:]) != 0 { // absolute deadlines: as wazero, unsupported
				return false
			}
			d := time.Duration(le.Uint64(sb[24:]))
			if timeout < 0 || d < timeout {
				timeout = d
			}
		case eventtypeFdRead, eventtypeFdWrite:
			s, ok := t.lookup(int32(le.Uint32(sb[16:])))
			if !ok {
				immediate = true
				continue
			}
			sockets = true
			events := int16(unix.POLLIN)
			if sub.eventtype == eventtypeFdWrite {
				events = unix.POLLOUT
			}
			sub.pfd = len(fds)
			fds = append(fds, unix.PollFd{Fd: int32(s.hostFD), Events: events})
		default:
			return setErrno(stack, errnoInval)
		}
	}
	if !sockets {
		return false
	}
	if immediate {
		timeout = 0
	}

	wake := len(fds)
	fds = append(fds, unix.PollFd{Fd: int32(t.wakeFD), Events: unix.POLLIN})
	var ts *unix.Timespec
	if timeout >= 0 {
		v := unix.NsecToTimespec(int64(timeout))
		ts = &v
	}
	if ctx.Err() == nil {
		stop := context.AfterFunc(ctx, t.wake)
		start := time.Now()
		for {
			_, err := unix.Ppoll(fds, ts, nil)
			if err != unix.EINTR {
				if err != nil {
					stop()
					return setErrno(stack, toErrno(err))
				}
				break
			}
			if ts != nil {
				left := timeout - time.Since(start)
				if left < 0 {
					left = 0
				}
				v := unix.NsecToTimespec(int64(left))
				ts = &v
			}
		}
		stop()
	}
	woken := fds[wake].Revents != 0 || ctx.Err() != nil

	outBuf, ok := mem.Read(out, nsubs*eventSize)
	if !ok {
		return setErrno(stack, errnoFault)
	}
	var nevents uint32
	anyFD := false
	for _, sub := range subs {
		if sub.eventtype == eventtypeClock {
			continue
		}
		var flags uint16
		if sub.pfd >= 0 {
			re := fds[sub.pfd].Revents
			if re == 0 {
				continue
			}
			if re&unix.POLLHUP != 0 {
				flags = eventHangup
			}
		}
		writeEvent(outBuf[nevents*eventSize:], sub.userdata, sub.eventtype, flags)
		nevents++
		anyFD = true
	}
	// A clock fires when nothing else did and the wait was not cut short by
	// cancellation: the ppoll timeout was then the earliest clock.
	if !anyFD && !woken {
		for _, sub := range subs {
			if sub.eventtype == eventtypeClock {
				writeEvent(outBuf[nevents*eventSize:], sub.userdata, eventtypeClock, 0)
				nevents++
			}
		}
	}
	if !mem.WriteUint32Le(resultNevents, nevents) {
		return setErrno(stack, errnoFault)
	}
	return setErrno(stack, errnoSuccess)
}

func writeEvent(b []byte, userdata uint64, eventtype byte, flags uint16) {
	le := binary.LittleEndian
	clear(b[:eventSize])
	le.PutUint64(b[0:], userdata)
	le.PutUint16(b[8:], errnoSuccess)
	b[10] = eventtype
	le.PutUint16(b[24:], flags)
}
