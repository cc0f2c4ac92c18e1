package lb

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/vishvananda/netns"
	"golang.org/x/net/icmp"
	"golang.org/x/sys/unix"
)

// refusedWithin bounds how long a refused connect may take. A dropped SYN
// is retried for a minute or more, so this only tells "answered" from
// "dropped"; it is not a measure of speed.
const refusedWithin = 2 * time.Second

func TestTCRefuseWithoutBackends(t *testing.T) {
	tp := newTopo(t)
	objs := loadAttach(t, tp)
	tcPutService(t, objs, 1, nodePort(30011), Service{})
	tcPutService(t, objs, 2, Frontend{Addr: topoNodeIP, Port: 30012, Proto: UDP, Scope: ScopeExternal}, Service{})

	for _, offload := range []bool{true, false} {
		t.Run(fmt.Sprintf("tx checksum offload %v", offload), func(t *testing.T) {
			// Without offload the kernel finishes a CHECKSUM_PARTIAL
			// packet's checksum as it leaves: the reply must survive that.
			mustDo(t, "tx checksum offload", setTxChecksum(t, tp.node, topoNodeIface, offload))
			icmpc := listenICMP(t, tp.outside)

			t.Run("tcp", func(t *testing.T) {
				start := time.Now()
				c, err := dialWithin(t, tp.outside, "tcp4", hostPort(topoNodeIP, 30011), 10*time.Second)
				took := time.Since(start)
				if err == nil {
					c.Close()
					t.Fatal("connected to a frontend without backends")
				}
				if !errors.Is(err, syscall.ECONNREFUSED) {
					t.Fatalf("connect: %v, want ECONNREFUSED", err)
				}
				if took > refusedWithin {
					t.Fatalf("refused after %v: the SYN was not answered at once", took)
				}
				checkUnreachable(t, icmpc, TCP, 30011)
			})

			t.Run("udp", func(t *testing.T) {
				c, err := dial(t, tp.outside, "udp4", hostPort(topoNodeIP, 30012))
				mustDo(t, "dial udp", err)
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				if _, err := c.Write([]byte("anyone?")); err != nil {
					t.Fatalf("send: %v", err)
				}
				_, err = c.Read(make([]byte, 64))
				if !errors.Is(err, syscall.ECONNREFUSED) {
					t.Fatalf("read after a datagram to a frontend without backends: %v, want ECONNREFUSED", err)
				}
				checkUnreachable(t, icmpc, UDP, 30012)
			})
		})
	}
}

func listenICMP(t *testing.T, ns netns.NsHandle) *icmp.PacketConn {
	t.Helper()
	var c *icmp.PacketConn
	mustDo(t, "icmp socket", inNS(t, ns, func() (err error) {
		c, err = icmp.ListenPacket("ip4:icmp", "0.0.0.0")
		return err
	}))
	t.Cleanup(func() { c.Close() })
	return c
}

// checkUnreachable reads the port unreachable the client got for its packet
// to the node IP's port, and checks it byte by byte: raw sockets do not
// verify checksums, the stack that delivered ECONNREFUSED may not have
// either (a CHECKSUM_PARTIAL packet is trusted).
func checkUnreachable(t *testing.T, c *icmp.PacketConn, proto Protocol, port uint16) {
	t.Helper()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 1500)
	for {
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			t.Fatalf("waiting for the port unreachable: %v", err)
		}
		b := buf[:n]
		if len(b) < 8+20+8 || b[0] != 3 || b[1] != 3 {
			continue
		}
		q := b[8:]
		if q[9] != byte(proto) || binary.BigEndian.Uint16(q[22:]) != port {
			continue
		}
		if from.String() != topoNodeIP.String() {
			t.Fatalf("port unreachable from %s, want the node %s", from, topoNodeIP)
		}
		if !icmpChecksumOK(b) {
			t.Fatalf("port unreachable has a bad ICMP checksum: % x", b)
		}
		if !icmpChecksumOK(q[:20]) {
			t.Fatalf("quoted IP header has a bad checksum: % x", q[:20])
		}
		src, _ := netip.AddrFromSlice(q[12:16])
		dst, _ := netip.AddrFromSlice(q[16:20])
		if src != topoClient || dst != topoNodeIP {
			t.Fatalf("quoted packet %s -> %s, want %s -> %s", src, dst, topoClient, topoNodeIP)
		}
		return
	}
}

// setTxChecksum turns transmit checksum offload of ifname in ns on or off
// (ethtool -K ifname tx on|off), through the ethtool ioctl.
func setTxChecksum(t *testing.T, ns netns.NsHandle, ifname string, on bool) error {
	t.Helper()
	return inNS(t, ns, func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		val := struct{ cmd, data uint32 }{cmd: unix.ETHTOOL_STXCSUM}
		if on {
			val.data = 1
		}
		var req struct {
			name [unix.IFNAMSIZ]byte
			data uintptr
			_    [16]byte
		}
		copy(req.name[:], ifname)
		req.data = uintptr(unsafe.Pointer(&val))
		_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&req)))
		runtime.KeepAlive(&val)
		if errno != 0 {
			return fmt.Errorf("ETHTOOL_STXCSUM on %s: %w", ifname, errno)
		}
		return nil
	})
}
