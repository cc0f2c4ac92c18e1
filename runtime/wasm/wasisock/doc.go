// Package wasisock gives WASI preview1 guests working preopened TCP
// listeners and the connections accepted from them, and lets them open
// sockets of their own (WasmEdge's socket extension), under wazero.
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
// fd_prestat_get and sock_accept, sock_recv, sock_send, sock_shutdown),
// plus the socket extension described below, which wazero lacks. Those look the descriptor up in the guest's
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
// them. Accepted connections and sockets the guest opens are numbered from
// ConnFDBase upwards, far from the descriptors wazero allocates, so the two
// tables never collide. A wazero preopened directory must not be
// configured at an fd a listener occupies. fd_close closes a socket; Close
// closes every socket left when the guest is gone. fd_fdstat_get reports
// SOCKET_STREAM (6) for TCP and SOCKET_DGRAM (5) for UDP sockets, so Go's
// net.FileConn makes a *net.TCPConn or a *net.UDPConn of them.
//
// # Socket extension
//
// Guests dial out with the socket extension of WasmEdge (v0.12 and later,
// its "v2" address form), which Go's github.com/dispatchrun/net (formerly
// stealthrocket/net), Rust's wasmedge_wasi_socket and C's
// wasmedge_wasi_socket_c import. The functions live in the
// wasi_snapshot_preview1 module; every parameter and result is an i32, and
// every result is a WASI errno. A guest without a Table gets ENOSYS (52).
//
// Sockets are the host's, opened by the sandbox process in whatever network
// namespace it runs in (the pod's), so Service ClusterIPs, other pods and
// the cluster DNS are reached as from any container of the pod. Host
// descriptors are always non-blocking; a guest socket is blocking until the
// guest sets FDFLAGS_NONBLOCK with fd_fdstat_set_flags, and a blocking call
// waits in ppoll(2) and ends when the guest is cancelled (ECANCELED, 11).
// Host errors map to the WASI errno of the same name (ECONNREFUSED 14,
// EINPROGRESS 26, EADDRINUSE 3, ETIMEDOUT 73, ...), anything unmapped to
// EIO (29).
//
// Values: address family INET4 = 1, INET6 = 2 (UNSPEC = 0 and UNIX = 3 are
// refused with EAFNOSUPPORT); socket type DGRAM = 1, STREAM = 2; protocol
// IP = 0, TCP = 1, UDP = 2.
//
// An address argument (addr) points to {buf u32, buf_len u32}. buf_len 4
// or 16 holds a bare IPv4 or IPv6 address; buf_len 128 is a storage whose
// first two bytes are the family (little-endian) and whose address follows
// at byte 2. On an AF_INET6 socket an IPv4 address is used IPv4-mapped.
// Ports are host-order integers.
//
//	sock_open(af, socktype, result.fd *u32)
//	    A new socket, blocking, at the next fd from ConnFDBase up.
//	    EAFNOSUPPORT for another family, EINVAL for another type.
//	sock_bind(fd, addr, port)
//	sock_listen(fd, backlog)
//	    The socket becomes a listener for sock_accept.
//	sock_connect(fd, addr, port)
//	    A non-blocking socket answers EINPROGRESS while the handshake runs:
//	    the guest subscribes FD_WRITE in poll_oneoff and then reads
//	    SO_ERROR. A blocking socket waits and returns the outcome
//	    (ECONNREFUSED, ETIMEDOUT, ...).
//	sock_accept(fd, flags, result.fd *u32)   (WASI's own)
//	sock_recv(fd, iovs, iovs_len, ri_flags, result.len *u32, result.ro_flags *u16)
//	sock_send(fd, iovs, iovs_len, si_flags, result.len *u32)
//	sock_shutdown(fd, how)                    (WASI's own)
//	sock_recv_from(fd, iovs, iovs_len, addr, ri_flags, result.port *u16,
//	        result.len *u32, result.ro_flags *u16)
//	    The sender's address is written to addr (128: family and address;
//	    4 or 16: the bare address). ri_flags RECV_PEEK (1) and RECV_WAITALL
//	    (2); ro_flags RECV_DATA_TRUNCATED (1) when a datagram was cut.
//	sock_send_to(fd, iovs, iovs_len, addr, port, si_flags, result.len *u32)
//	sock_getlocaladdr(fd, addr, result.port *u32)
//	sock_getpeeraddr(fd, addr, result.port *u32)
//	    addr's buffer is a 128-byte storage (or 4/16 bytes for a bare
//	    address). ENOTCONN (53) from getpeeraddr while not connected.
//	sock_getsockopt(fd, level, name, value, value_len)
//	sock_setsockopt(fd, level, name, value, value_len)
//	    Level SOL_SOCKET (0) only (else ENOPROTOOPT, 50). Names:
//	    SO_REUSEADDR 0, SO_TYPE 1 (answers the extension's socket type),
//	    SO_ERROR 2 (answers and clears the pending error as a WASI errno),
//	    SO_DONTROUTE 3, SO_BROADCAST 4, SO_SNDBUF 5, SO_RCVBUF 6,
//	    SO_KEEPALIVE 7, SO_OOBINLINE 8, SO_LINGER 9 (two i32: on, seconds),
//	    SO_RCVLOWAT 10, SO_ACCEPTCONN 13 as i32 values; SO_RCVTIMEO 11 and
//	    SO_SNDTIMEO 12 are ENOTSUP. For getsockopt WasmEdge passes in
//	    value_len a pointer to the length and writes the length used back;
//	    dispatchrun/net passes the length itself. A value below 256 is
//	    taken as a length, anything else as the pointer.
//	sock_getaddrinfo(node, node_len, service, service_len, hints,
//	        res, max_res_len, result.res_len *u32)
//	    node and service are strings (a trailing NUL is allowed). hints and
//	    the results are __wasi_addrinfo_t records of 28 bytes: flags u16
//	    @0, family u8 @2, socktype u8 @3, protocol u32 @4, addrlen u32 @8,
//	    addr @12, canonname @16, canonname_len u32 @20, next @24. res points
//	    to the address of the first record; the guest chains its records
//	    with next and gives each a __wasi_sockaddr_t (family u32 @0,
//	    sa_data_len u32 @4, sa_data @8) with an sa_data buffer, and a
//	    canonical-name buffer. The chain is followed up to max_res_len
//	    records, a null next or a record seen before; result.res_len
//	    counts the records filled. sa_data is Linux's sockaddr_in or
//	    sockaddr_in6 after the family: the port in network order, then the
//	    IPv4 address and 8 zero bytes (14 bytes), or the flow label, the
//	    IPv6 address and the scope id (26 bytes). IPv4 addresses come
//	    first; with socktype 0 each address gives a STREAM and a DGRAM
//	    record. Flags: AI_PASSIVE 1 (an empty node is the wildcard rather
//	    than loopback), AI_CANONNAME 2 (the node is copied as the name),
//	    AI_NUMERICHOST 4, AI_NUMERICSERV 8; AI_V4MAPPED, AI_ALL and
//	    AI_ADDRCONFIG are accepted and ignored. A service is a port number
//	    or a name from the services database. Errors are WasmEdge's errno
//	    extension: AI_AGAIN 78, AI_BADFLAG 79, AI_FAIL 80, AI_FAMILY 81,
//	    AI_MEMORY 82, AI_NODATA 83, AI_NONAME 84, AI_SERVICE 85,
//	    AI_SOCKTYPE 86.
//
// WasmEdge's older address form (getlocaladdr and getpeeraddr with an
// extra address-type result, recv_from without a port) has the same names
// with other signatures; wasm imports are typed, so only the v2 form, the
// one current libraries use, can be offered.
//
// Names are resolved on the host: by Go's net.DefaultResolver (the
// sandbox's /etc/hosts and /etc/resolv.conf), or, with WithResolvConf,
// by the nameservers of a given resolv.conf, tried in order on port 53,
// with its search list and ndots applied as resolv.conf(5) describes, so
// that pods use the cluster DNS and short Service names. IP literals are
// never sent to a nameserver.
//
// # Go guests
//
// A Go guest (GOOS=wasip1) imports sandbox/wasinet: wasinet.Dial and
// DialContext ("tcp", "udp" and their 4/6 forms) return net.Conn values
// driven by Go's netpoller, wasinet.NewClient an http.Client with
// keep-alive, wasinet.LookupNetIP resolves through sock_getaddrinfo. Go's
// github.com/dispatchrun/net wasip1 package targets the same functions and
// calling style (its getsockopt length by value and self-chained addrinfo
// records included), which the tests exercise; it is not fetched here.
package wasisock
