package main

// The compat mode calls the socket extension the way Go's dispatchrun/net
// (formerly stealthrocket/net) does, which differs from sandbox/wasinet:
// sock_getsockopt gets the value's length itself rather than a pointer to
// it, and the sock_getaddrinfo records are chained with each ai_next
// pointing at its own record.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"syscall"
	"unsafe"
)

//go:wasmimport wasi_snapshot_preview1 sock_open
//go:noescape
func compatSockOpen(af, socktype int32, fd unsafe.Pointer) syscall.Errno

//go:wasmimport wasi_snapshot_preview1 sock_connect
//go:noescape
func compatSockConnect(fd int32, addr unsafe.Pointer, port uint32) syscall.Errno

//go:wasmimport wasi_snapshot_preview1 sock_getsockopt
//go:noescape
func compatSockGetsockopt(fd int32, level, name uint32, value unsafe.Pointer, valueLen uint32) syscall.Errno

//go:wasmimport wasi_snapshot_preview1 sock_getpeeraddr
//go:noescape
func compatSockGetpeeraddr(fd int32, addr, port unsafe.Pointer) syscall.Errno

//go:wasmimport wasi_snapshot_preview1 sock_getaddrinfo
//go:noescape
func compatSockGetaddrinfo(node unsafe.Pointer, nodeLen uint32, service unsafe.Pointer, serviceLen uint32,
	hints, res unsafe.Pointer, maxResLen uint32, resLen unsafe.Pointer) syscall.Errno

type compatAddrinfo struct {
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

type compatSockaddr struct {
	family  uint32
	dataLen uint32
	data    uint32
	_       [4]byte
}

type compatSlot struct {
	ai    compatAddrinfo
	sa    compatSockaddr
	data  [26]byte
	canon [30]byte
}

func p32(p unsafe.Pointer) uint32 { return uint32(uintptr(p)) }

// compat resolves host:port with sock_getaddrinfo, connects with a raw
// 4-byte address, waits with SO_ERROR, names the peer and echoes msg.
func compat(host, port, msg string) error {
	slots := make([]compatSlot, 16)
	for i := range slots {
		s := &slots[i]
		s.sa.dataLen = uint32(len(s.data))
		s.sa.data = p32(unsafe.Pointer(&s.data))
		s.ai.addrlen = uint32(unsafe.Sizeof(s.sa))
		s.ai.addr = p32(unsafe.Pointer(&s.sa))
		s.ai.canonname = p32(unsafe.Pointer(&s.canon))
		s.ai.canonnameLen = uint32(len(s.canon))
		s.ai.next = p32(unsafe.Pointer(&s.ai)) // dispatchrun/net's self-loop
	}
	hints := compatAddrinfo{flags: 1 << 3, family: 0, socktype: 2, protocol: 1}
	node, service := []byte(host+"\x00"), []byte(port+"\x00")
	res := p32(unsafe.Pointer(&slots[0].ai))
	var n uint32
	errno := compatSockGetaddrinfo(unsafe.Pointer(&node[0]), uint32(len(node)), unsafe.Pointer(&service[0]), uint32(len(service)),
		unsafe.Pointer(&hints), unsafe.Pointer(&res), uint32(len(slots)), unsafe.Pointer(&n))
	runtime.KeepAlive(slots)
	if errno != 0 {
		return fmt.Errorf("sock_getaddrinfo: %w", errno)
	}
	s := slots[0]
	fmt.Printf("getaddrinfo n=%d family=%d port=%d addr=%v\n", n, s.sa.family, binary.BigEndian.Uint16(s.data[:2]), net.IP(s.data[2:6]))
	if s.sa.family != 1 {
		return errors.New("first address is not IPv4")
	}

	var fd int32
	if errno := compatSockOpen(1, 2, unsafe.Pointer(&fd)); errno != 0 {
		return fmt.Errorf("sock_open: %w", errno)
	}
	if err := syscall.SetNonblock(int(fd), true); err != nil {
		return err
	}
	ip := [4]byte(s.data[2:6])
	buf := [2]uint32{p32(unsafe.Pointer(&ip)), 4}
	errno = compatSockConnect(fd, unsafe.Pointer(&buf), uint32(binary.BigEndian.Uint16(s.data[:2])))
	runtime.KeepAlive(&ip)
	if errno != 0 && errno != syscall.EINPROGRESS {
		return fmt.Errorf("sock_connect: %w", errno)
	}
	f := os.NewFile(uintptr(fd), "compat")
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var connErr error
	if err := rc.Write(func(fd uintptr) bool {
		var v int32
		if errno := compatSockGetsockopt(int32(fd), 0, 2, unsafe.Pointer(&v), 4); errno != 0 {
			connErr = errno
			return true
		}
		connErr = nil
		if v != 0 {
			connErr = syscall.Errno(v)
		}
		return connErr != syscall.EINPROGRESS
	}); err != nil {
		return err
	}
	if connErr != nil {
		return fmt.Errorf("connect: %w", connErr)
	}
	var st struct {
		family uint16
		addr   [126]byte
	}
	ab := [2]uint32{p32(unsafe.Pointer(&st)), 128}
	var peerPort uint32
	if errno := compatSockGetpeeraddr(fd, unsafe.Pointer(&ab), unsafe.Pointer(&peerPort)); errno != 0 {
		return fmt.Errorf("sock_getpeeraddr: %w", errno)
	}
	runtime.KeepAlive(&st)
	fmt.Printf("peer family=%d addr=%v port=%d\n", st.family, net.IP(st.addr[:4]), peerPort)

	c, err := net.FileConn(f)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := io.WriteString(c, msg); err != nil {
		return err
	}
	reply := make([]byte, len(msg))
	if _, err := io.ReadFull(c, reply); err != nil {
		return err
	}
	fmt.Printf("reply=%s\n", reply)
	return nil
}
