package wasisock

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// FirstListenerFD is the guest descriptor of the first listener.
const FirstListenerFD = 3

// ConnFDBase is the guest descriptor of the first accepted connection.
const ConnFDBase = 1 << 20

// socket is one host descriptor the guest sees as a socket.
type socket struct {
	hostFD   int
	listener bool
	// dgram marks a UDP socket; every other socket is a TCP stream.
	dgram bool
	// inet6 marks a socket the guest opened as AF_INET6.
	inet6 bool
	// nonblock is the guest's view of FDFLAGS_NONBLOCK; the host fd itself
	// is always non-blocking.
	nonblock bool
}

// Table holds the sockets of one guest instance.
type Table struct {
	mu       sync.Mutex
	socks    map[int32]*socket
	nextFD   int32
	wakeFD   int
	closed   bool
	resolver *resolver
}

// TableOption configures a Table made by NewTableWithOptions.
type TableOption func(*tableConfig) error

type tableConfig struct {
	resolver *resolver
	hosts    map[string][]netip.Addr
}

// NewTable takes over the given listeners: each is duplicated into a
// non-blocking host descriptor and becomes guest fd 3, 4, ... in order. The
// caller may close its listeners afterwards; Close releases the Table's own.
// Names the guest resolves with sock_getaddrinfo go to Go's
// net.DefaultResolver.
func NewTable(listeners ...net.Listener) (*Table, error) {
	return NewTableWithOptions(listeners)
}

// NewTableWithOptions is NewTable with options, such as WithResolvConf.
func NewTableWithOptions(listeners []net.Listener, opts ...TableOption) (*Table, error) {
	cfg := tableConfig{resolver: defaultResolver()}
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, fmt.Errorf("wasisock: %w", err)
		}
	}
	wake, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("wasisock: eventfd: %w", err)
	}
	cfg.resolver.hosts = cfg.hosts
	t := &Table{socks: map[int32]*socket{}, nextFD: ConnFDBase, wakeFD: wake, resolver: cfg.resolver}
	for i, l := range listeners {
		fd, err := dupListener(l)
		if err != nil {
			_ = t.Close()
			return nil, fmt.Errorf("wasisock: listener %d (%s): %w", i, l.Addr(), err)
		}
		t.socks[int32(FirstListenerFD+i)] = &socket{hostFD: fd, listener: true, nonblock: true}
	}
	return t, nil
}

func dupListener(l net.Listener) (int, error) {
	sc, ok := l.(syscall.Conn)
	if !ok {
		return -1, errors.New("listener has no host descriptor")
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	var dupErr error
	if err := raw.Control(func(s uintptr) {
		fd, dupErr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return -1, err
	}
	if dupErr != nil {
		return -1, fmt.Errorf("dup: %w", dupErr)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		_ = unix.Close(fd)
		return -1, fmt.Errorf("set non-blocking: %w", err)
	}
	return fd, nil
}

// Close closes every socket of the table. The guest must no longer run.
func (t *Table) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil
	}
	t.closed = true
	var errs []error
	for fd, s := range t.socks {
		if err := unix.Close(s.hostFD); err != nil {
			errs = append(errs, fmt.Errorf("close fd %d: %w", fd, err))
		}
		delete(t.socks, fd)
	}
	if err := unix.Close(t.wakeFD); err != nil {
		errs = append(errs, fmt.Errorf("close eventfd: %w", err))
	}
	return errors.Join(errs...)
}

// Len reports how many sockets (listeners and connections) are open.
func (t *Table) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.socks)
}

func (t *Table) lookup(fd int32) (*socket, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s, ok := t.socks[fd]
	return s, ok
}

func (t *Table) add(s *socket) (int32, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return 0, false
	}
	for {
		fd := t.nextFD
		t.nextFD++
		if t.nextFD < ConnFDBase {
			t.nextFD = ConnFDBase
		}
		if _, used := t.socks[fd]; !used {
			t.socks[fd] = s
			return fd, true
		}
	}
}

func (t *Table) remove(fd int32) (*socket, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s, ok := t.socks[fd]
	delete(t.socks, fd)
	return s, ok
}

// wake interrupts a poll in progress; the eventfd stays readable, so every
// later poll of this table returns at once as well, which is what a
// cancelled guest needs.
func (t *Table) wake() {
	var one = [8]byte{1}
	_, _ = unix.Write(t.wakeFD, one[:])
}

// wait blocks until hostFD is ready for events or ctx is done.
func (t *Table) wait(ctx context.Context, hostFD int, events int16) error {
	stop := context.AfterFunc(ctx, t.wake)
	defer stop()
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		fds := []unix.PollFd{{Fd: int32(hostFD), Events: events}, {Fd: int32(t.wakeFD), Events: unix.POLLIN}}
		n, err := unix.Ppoll(fds, nil, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if n > 0 && fds[0].Revents != 0 {
			return nil
		}
	}
}

type tableKey struct{}

// WithTable returns a context that binds t to the guest instantiated or
// called with it.
func WithTable(ctx context.Context, t *Table) context.Context {
	return context.WithValue(ctx, tableKey{}, t)
}

func tableFrom(ctx context.Context) *Table {
	t, _ := ctx.Value(tableKey{}).(*Table)
	return t
}

func (s *socket) filetype() byte {
	if s.dgram {
		return filetypeSocketDgram
	}
	return filetypeSocketStream
}
