//go:build wasip1

package wasinet

import (
	"runtime"
	"syscall"
	"unsafe"
)

// Values of the socket extension (see runtime/wasm/wasisock).
const (
	afInet4 = 1
	afInet6 = 2

	sockDgram  = 1
	sockStream = 2

	solSocket = 0
	soError   = 2

	aiNumericserv = 1 << 3

	protoTCP = 1
	protoUDP = 2
)

//go:wasmimport wasi_snapshot_preview1 sock_open
//go:noescape
func sockOpen(af, socktype int32, fd unsafe.Pointer) syscall.Errno

//go:wasmimport wasi_snapshot_preview1 sock_connect
//go:noescape
func sockConnect(fd int32, addr unsafe.Pointer, port uint32) syscall.Errno

//go:wasmimport wasi_snapshot_preview1 sock_bind
//go:noescape
func sockBind(fd int32, addr unsafe.Pointer, port uint32) syscall.Errno

//go:wasmimport wasi_snapshot_preview1 sock_listen
func sockListen(fd, backlog int32) syscall.Errno

//go:wasmimport wasi_snapshot_preview1 sock_getsockopt
//go:noescape
func sockGetsockopt(fd int32, level, name uint32, value, valueLen unsafe.Pointer) syscall.Errno

//go:wasmimport wasi_snapshot_preview1 sock_getlocaladdr
//go:noescape
func sockGetlocaladdr(fd int32, addr, port unsafe.Pointer) syscall.Errno

//go:wasmimport wasi_snapshot_preview1 sock_getpeeraddr
//go:noescape
func sockGetpeeraddr(fd int32, addr, port unsafe.Pointer) syscall.Errno

//go:wasmimport wasi_snapshot_preview1 sock_getaddrinfo
//go:noescape
func sockGetaddrinfo(node unsafe.Pointer, nodeLen uint32, service unsafe.Pointer, serviceLen uint32,
	hints, res unsafe.Pointer, maxResLen uint32, resLen unsafe.Pointer) syscall.Errno

// ptr32 is a guest pointer as the host sees it: an offset in linear memory.
func ptr32(p unsafe.Pointer) uint32 { return uint32(uintptr(p)) }

// addrBuf is the extension's address argument: a buffer and its length.
type addrBuf struct {
	buf    uint32
	bufLen uint32
}

// addrStorage is the 128-byte form of an address: family, then address.
type addrStorage struct {
	family uint16
	addr   [126]byte
}

func openSocket(family, socktype int32) (int, error) {
	var fd int32
	if errno := sockOpen(family, socktype, unsafe.Pointer(&fd)); errno != 0 {
		return -1, errno
	}
	return int(fd), nil
}

// withAddr calls fn with an address argument for ip, which must be 4 or
// 16 bytes long.
func withAddr(ip []byte, fn func(addr unsafe.Pointer) syscall.Errno) error {
	raw := append([]byte(nil), ip...)
	b := addrBuf{buf: ptr32(unsafe.Pointer(&raw[0])), bufLen: uint32(len(raw))}
	errno := fn(unsafe.Pointer(&b))
	runtime.KeepAlive(raw)
	if errno != 0 {
		return errno
	}
	return nil
}

func connect(fd int, ip []byte, port int) error {
	return withAddr(ip, func(a unsafe.Pointer) syscall.Errno { return sockConnect(int32(fd), a, uint32(port)) })
}

func bind(fd int, ip []byte, port int) error {
	return withAddr(ip, func(a unsafe.Pointer) syscall.Errno { return sockBind(int32(fd), a, uint32(port)) })
}

func listen(fd, backlog int) error {
	if errno := sockListen(int32(fd), int32(backlog)); errno != 0 {
		return errno
	}
	return nil
}

// pendingError reads and clears SO_ERROR, as a WASI errno.
func pendingError(fd int) error {
	var v, n int32 = 0, 4
	if errno := sockGetsockopt(int32(fd), solSocket, soError, unsafe.Pointer(&v), unsafe.Pointer(&n)); errno != 0 {
		return errno
	}
	if v != 0 {
		return syscall.Errno(v)
	}
	return nil
}

// sockName returns a socket's local (peer false) or remote address.
func sockName(fd int, peer bool) ([]byte, int, error) {
	var st addrStorage
	b := addrBuf{buf: ptr32(unsafe.Pointer(&st)), bufLen: uint32(unsafe.Sizeof(st))}
	var port uint32
	get := sockGetlocaladdr
	if peer {
		get = sockGetpeeraddr
	}
	errno := get(int32(fd), unsafe.Pointer(&b), unsafe.Pointer(&port))
	runtime.KeepAlive(&st)
	if errno != 0 {
		return nil, 0, errno
	}
	switch st.family {
	case afInet4:
		return append([]byte(nil), st.addr[:4]...), int(port), nil
	case afInet6:
		return append([]byte(nil), st.addr[:16]...), int(port), nil
	}
	return nil, 0, syscall.EAFNOSUPPORT
}

// The records sock_getaddrinfo fills: __wasi_addrinfo_t, __wasi_sockaddr_t
// and its data, laid out for the host (32-bit guest pointers).
type addrinfoRec struct {
	flags        uint16
	family       uint8
	socktype     uint8
	protocol     uint32
	addrlen      uint32
	addr         uint32
	canonname    uint32
	canonnameLen uint32
	next         uint32
}

type sockaddrRec struct {
	family  uint32
	dataLen uint32
	data    uint32
}

type addrinfoSlot struct {
	ai   addrinfoRec
	sa   sockaddrRec
	data [26]byte
}

// getaddrinfo resolves host on the host side into at most max addresses
// of the given family (0 for any) for socktype.
func getaddrinfo(host string, family, socktype uint8, max int) ([][]byte, error) {
	slots := make([]addrinfoSlot, max)
	for i := range slots {
		s := &slots[i]
		s.sa.dataLen = uint32(len(s.data))
		s.sa.data = ptr32(unsafe.Pointer(&s.data[0]))
		s.ai.addr = ptr32(unsafe.Pointer(&s.sa))
		s.ai.addrlen = uint32(unsafe.Sizeof(s.sa))
		if i > 0 {
			slots[i-1].ai.next = ptr32(unsafe.Pointer(&s.ai))
		}
	}
	proto := uint32(protoTCP)
	if socktype == sockDgram {
		proto = protoUDP
	}
	hints := addrinfoRec{flags: aiNumericserv, family: family, socktype: socktype, protocol: proto}
	node := append([]byte(host), 0)
	service := []byte("0\x00")
	res := ptr32(unsafe.Pointer(&slots[0].ai))
	var n uint32
	errno := sockGetaddrinfo(unsafe.Pointer(&node[0]), uint32(len(node)), unsafe.Pointer(&service[0]), uint32(len(service)),
		unsafe.Pointer(&hints), unsafe.Pointer(&res), uint32(max), unsafe.Pointer(&n))
	runtime.KeepAlive(slots)
	runtime.KeepAlive(node)
	runtime.KeepAlive(service)
	if errno != 0 {
		return nil, errno
	}
	var ips [][]byte
	for _, s := range slots[:n] {
		switch s.sa.family {
		case afInet4:
			ips = append(ips, append([]byte(nil), s.data[2:6]...))
		case afInet6:
			ips = append(ips, append([]byte(nil), s.data[6:22]...))
		}
	}
	return ips, nil
}
