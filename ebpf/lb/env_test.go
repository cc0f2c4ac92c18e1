package lb

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/wasmkube/wasmkube/sandbox/cgroups"
	"golang.org/x/sys/unix"
)

// The socket hooks cannot be run with BPF_PROG_TEST_RUN, so the tests attach
// them to a temporary child cgroup and make real calls from a child process
// inside it: the test binary again, running TestLBChild.

const childEnv = "WASMKUBE_LB_CHILD"

type testEnv struct {
	pinDir string
	cgroup string
	cgFD   int
}

func randHex(tb testing.TB, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		tb.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// newEnv makes a pin directory under /sys/fs/bpf and a child cgroup of the
// cgroup2 root, both removed at cleanup.
func newEnv(tb testing.TB) *testEnv {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Fatal("the datapath tests load BPF programs and need root")
	}
	root, err := cgroups.Mountpoint()
	if err != nil {
		tb.Fatalf("no cgroup2 mount to make a test cgroup in: %v", err)
	}
	id := randHex(tb, 4)
	e := &testEnv{
		pinDir: filepath.Join(BPFFS, "wasmkube-test-"+id),
		cgroup: filepath.Join(root, "wasmkube-lb-test-"+id),
	}
	if err := os.Mkdir(e.cgroup, 0o755); err != nil {
		tb.Fatal(err)
	}
	fd, err := unix.Open(e.cgroup, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		tb.Fatal(err)
	}
	e.cgFD = fd
	tb.Cleanup(func() {
		if err := Remove(e.pinDir); err != nil {
			tb.Error(err)
		}
		unix.Close(fd)
		if err := os.Remove(e.cgroup); err != nil {
			tb.Error(err)
		}
	})
	return e
}

// open opens a Datapath on the env's pin dir, attached to its cgroup.
func (e *testEnv) open(tb testing.TB) *Datapath {
	tb.Helper()
	d, err := Open(e.pinDir)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { d.Close() })
	if err := d.AttachCgroup(e.cgroup); err != nil {
		tb.Fatal(err)
	}
	return d
}

// childOp is what the child process does; childResult one call's outcome.
type childOp struct {
	Kind   string // tcp, udp, udpconn, bench
	Target string
	Direct string // bench: the backend, for comparison
	N      int
	// Netns runs the child in a network namespace of its own, where it
	// answers "inner-frontend" on Target and "inner-backend" on Direct
	// itself: the reply tells whether its connect was translated.
	Netns bool
}

type childResult struct {
	Peer  string // getpeername (tcp, udpconn)
	From  string // recvfrom's source (udp, udpconn)
	Reply string
	Errno int
	Err   string
	// bench
	FrontendNs, DirectNs float64
}

// run runs op in a child process inside the env's cgroup.
func (e *testEnv) run(tb testing.TB, op childOp) []childResult {
	tb.Helper()
	return e.runIn(tb, e.cgFD, op)
}

// subCgroup makes the cgroup rel below the env's (and its parents), removed
// at cleanup, and returns its path and an open descriptor for runIn.
func (e *testEnv) subCgroup(tb testing.TB, rel string) (string, int) {
	tb.Helper()
	dir := filepath.Join(e.cgroup, rel)
	var made []string // deepest first
	for d := dir; d != e.cgroup; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil {
			break
		}
		made = append(made, d)
	}
	// Cleanups run last first: register the top one first.
	for i := len(made) - 1; i >= 0; i-- {
		tb.Cleanup(func() {
			if err := os.Remove(made[i]); err != nil {
				tb.Error(err)
			}
		})
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { unix.Close(fd) })
	return dir, fd
}

// runIn runs op in a child process inside the cgroup open as cgFD.
func (e *testEnv) runIn(tb testing.TB, cgFD int, op childOp) []childResult {
	tb.Helper()
	spec, _ := json.Marshal(op)
	cmd := exec.Command(os.Args[0], "-test.run=^TestLBChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"="+string(spec))
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: cgFD}
	if op.Netns {
		cmd.SysProcAttr.Cloneflags = syscall.CLONE_NEWNET
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		tb.Fatalf("child %+v: %v\n%s%s", op, err, out, stderr.String())
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if line, ok := strings.CutPrefix(sc.Text(), "LBRESULT "); ok {
			var res []childResult
			if err := json.Unmarshal([]byte(line), &res); err != nil {
				tb.Fatal(err)
			}
			return res
		}
	}
	tb.Fatalf("child %+v printed no result:\n%s", op, out)
	return nil
}

// TestLBChild is the child side of the tests; without childEnv it does
// nothing.
func TestLBChild(t *testing.T) {
	spec := os.Getenv(childEnv)
	if spec == "" {
		return
	}
	var op childOp
	if err := json.Unmarshal([]byte(spec), &op); err != nil {
		t.Fatal(err)
	}
	if op.Netns {
		innerServers(t, op)
	}
	var res []childResult
	switch op.Kind {
	case "bench":
		res = []childResult{benchConnects(t, op)}
	default:
		for i := 0; i < op.N; i++ {
			r := childCall(op)
			res = append(res, r)
			if unix.Errno(r.Errno) == unix.EAGAIN {
				break // no reply: the rest would time out too
			}
		}
	}
	b, _ := json.Marshal(res)
	fmt.Printf("\nLBRESULT %s\n", b)
}

func sockaddr(s string) *unix.SockaddrInet4 {
	ap := netip.MustParseAddrPort(s)
	return &unix.SockaddrInet4{Addr: ap.Addr().As4(), Port: int(ap.Port())}
}

func addrString(sa unix.Sockaddr) string {
	if in, ok := sa.(*unix.SockaddrInet4); ok {
		return netip.AddrPortFrom(netip.AddrFrom4(in.Addr), uint16(in.Port)).String()
	}
	return fmt.Sprint(sa)
}

func childCall(op childOp) (r childResult) {
	fail := func(err error) childResult {
		var errno unix.Errno
		if errors.As(err, &errno) {
			r.Errno = int(errno)
		}
		r.Err = err.Error()
		return r
	}
	typ := unix.SOCK_STREAM
	if op.Kind != "tcp" {
		typ = unix.SOCK_DGRAM
	}
	fd, err := unix.Socket(unix.AF_INET, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fail(err)
	}
	defer unix.Close(fd)
	tv := unix.Timeval{Sec: 3}
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	buf := make([]byte, 128)
	switch op.Kind {
	case "tcp":
		// Reset on close: thousands of connects leave no TIME_WAIT.
		unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1})
		if err := unix.Connect(fd, sockaddr(op.Target)); err != nil {
			return fail(err)
		}
		peer, err := unix.Getpeername(fd)
		if err != nil {
			return fail(err)
		}
		r.Peer = addrString(peer)
		n, err := unix.Read(fd, buf)
		if err != nil {
			return fail(err)
		}
		r.Reply = string(buf[:n])
	case "udp":
		if err := unix.Sendto(fd, []byte("ping"), 0, sockaddr(op.Target)); err != nil {
			return fail(err)
		}
		n, from, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			return fail(err)
		}
		r.From, r.Reply = addrString(from), string(buf[:n])
	case "udpconn":
		if err := unix.Connect(fd, sockaddr(op.Target)); err != nil {
			return fail(err)
		}
		peer, err := unix.Getpeername(fd)
		if err != nil {
			return fail(err)
		}
		r.Peer = addrString(peer)
		if _, err := unix.Write(fd, []byte("ping")); err != nil {
			return fail(err)
		}
		n, from, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			return fail(err)
		}
		r.From, r.Reply = addrString(from), string(buf[:n])
	}
	return r
}

// benchConnects times op.N connects to the frontend and as many straight to
// the backend, interleaved so both see the same machine load.
func benchConnects(t *testing.T, op childOp) childResult {
	var front, direct time.Duration
	connect := func(to *unix.SockaddrInet4) time.Duration {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(fd)
		unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1})
		start := time.Now()
		if err := unix.Connect(fd, to); err != nil {
			t.Fatalf("connect %v: %v", addrString(to), err)
		}
		return time.Since(start)
	}
	f, d := sockaddr(op.Target), sockaddr(op.Direct)
	for i := 0; i < op.N; i++ {
		front += connect(f)
		direct += connect(d)
	}
	return childResult{
		FrontendNs: float64(front.Nanoseconds()) / float64(op.N),
		DirectNs:   float64(direct.Nanoseconds()) / float64(op.N),
	}
}

// tcpBackend listens on 127.0.0.1 and answers every connection with name.
func tcpBackend(tb testing.TB, name string) Backend {
	return tcpServer(tb, "127.0.0.1:0", name)
}

func tcpServer(tb testing.TB, at, name string) Backend {
	tb.Helper()
	l, err := net.Listen("tcp4", at)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Write([]byte(name))
			c.Close()
		}
	}()
	ap := netip.MustParseAddrPort(l.Addr().String())
	return Backend{Addr: ap.Addr(), Port: ap.Port()}
}

// udpBackend answers every datagram with name.
func udpBackend(tb testing.TB, name string) Backend {
	tb.Helper()
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	go func() {
		buf := make([]byte, 128)
		for {
			_, from, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			c.WriteTo([]byte(name), from)
		}
	}()
	ap := netip.MustParseAddrPort(c.LocalAddr().String())
	return Backend{Addr: ap.Addr(), Port: ap.Port()}
}

// decoy listens on a random 127.77.x.y address, answering "decoy": a
// frontend on it shows whether a connect was translated (a backend
// answers), refused by the hook, or left alone (the decoy answers).
func decoy(tb testing.TB, proto Protocol) Frontend {
	tb.Helper()
	b := make([]byte, 2)
	rand.Read(b)
	at := fmt.Sprintf("127.77.%d.%d:0", b[0], max(b[1], 1))
	var be Backend
	if proto == TCP {
		be = tcpServer(tb, at, "decoy")
	} else {
		c, err := net.ListenPacket("udp4", at)
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { c.Close() })
		ap := netip.MustParseAddrPort(c.LocalAddr().String())
		be = Backend{Addr: ap.Addr(), Port: ap.Port()}
	}
	return Frontend{Addr: be.Addr, Port: be.Port, Proto: proto, Scope: ScopeSocket}
}

func (f Frontend) target() string { return netip.AddrPortFrom(f.Addr, f.Port).String() }

// innerServers brings up the loopback of the child's own namespace and
// answers on op's frontend and backend addresses there.
func innerServers(t *testing.T, op childOp) {
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkSetUp(lo); err != nil {
		t.Fatal(err)
	}
	tcpServer(t, op.Target, "inner-frontend")
	tcpServer(t, op.Direct, "inner-backend")
}
