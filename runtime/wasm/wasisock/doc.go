// Package wasisock gives WASI preview1 guests working preopened TCP listeners
// and the connections accepted from them, under wazero.
//
// wazero's own socket support (experimental/sock) accepts connections, but its
// poll_oneoff does not wait on socket readiness: an FD_READ subscription on a
// non-blocking fd is reported ready at once and an FD_WRITE subscription is
// answered with ENOTSUP. Go's wasip1 netpoller turns that error into a poll
// error on the descriptor, so a Go net/http server accepts connections but
// its connection readers never make progress. wazero does not expose the host
// descriptors behind its socket files, so its poll_oneoff cannot be repaired
// from outside.
//
// Design: the package instantiates the wasi_snapshot_preview1 host module
// itself. Every function is wazero's implementation, except the ones that
// touch descriptors a socket can stand behind (poll_oneoff, fd_read,
// fd_write, fd_close, fd_fdstat_get, fd_fdstat_set_flags, fd_filestat_get,
// fd_prestat_get and sock_*). Those look the descriptor up in the guest's
// socket Table and otherwise hand the call to wazero unchanged, so files,
// clocks, args and stdio keep wazero's semantics. The Table travels in the
// context passed to the guest's instantiation (WithTable), so one runtime can
// host many guests with different listeners.
//
// Sockets are host descriptors kept non-blocking on the host; a guest that
// asks for blocking behaviour gets it emulated by waiting with ppoll(2), so a
// blocked call never spins. poll_oneoff waits with ppoll(2) on the guest's
// socket subscriptions, its relative clock subscription and an eventfd that
// is signalled when the call's context is cancelled, so cancelling a guest
// that sleeps in poll_oneoff ends it promptly (with wazero's
// WithCloseOnContextDone).
//
// Descriptor layout seen by the guest: listeners are fds 3, 4, ... in the
// order given to NewTable, reported as non-blocking stream sockets, and
// fd_prestat_get answers ENOTDIR for them so that preopen scans continue past
// them. Accepted connections are numbered from ConnFDBase upwards, far from
// the descriptors wazero allocates, so the two tables never collide. A
// wazero preopened directory must not be configured at an fd a listener
// occupies.
package wasisock
