package wasisock_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wasmkube/wasmkube/runtime/wasm/wasisock"
)

// echoTCP serves one echo per connection on network ("tcp4" or "tcp6").
func echoTCP(t *testing.T, network, addr string) net.Listener {
	t.Helper()
	l, err := net.Listen(network, addr)
	if err != nil {
		t.Fatalf("listen %s %s: %v", network, addr, err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	return l
}

func TestGuestDialsTCP(t *testing.T) {
	for _, tc := range []struct{ network, listen string }{
		{"tcp4", "127.0.0.1:0"},
		{"tcp6", "[::1]:0"},
	} {
		t.Run(tc.network, func(t *testing.T) {
			l := echoTCP(t, tc.network, tc.listen)
			out := runGuest(t, nil, "tcp", l.Addr().String(), "hello over "+tc.network)
			if !strings.Contains(out, "reply=hello over "+tc.network+"\n") {
				t.Fatalf("guest output %q has no echoed reply", out)
			}
			if !strings.Contains(out, "remote="+l.Addr().String()+"\n") {
				t.Fatalf("guest output %q does not name the peer %s (sock_getpeeraddr)", out, l.Addr())
			}
			host, _, _ := net.SplitHostPort(l.Addr().String())
			if !strings.Contains(out, "local="+net.JoinHostPort(host, "")) {
				t.Fatalf("guest output %q does not show a local address on %s (sock_getlocaladdr)", out, host)
			}
		})
	}
}

func TestGuestDialsByName(t *testing.T) {
	l := echoTCP(t, "tcp4", "127.0.0.1:0")
	_, port, _ := net.SplitHostPort(l.Addr().String())
	out := runGuest(t, nil, "tcp", "localhost:"+port, "by name")
	if !strings.Contains(out, "reply=by name\n") {
		t.Fatalf("guest output %q has no echoed reply", out)
	}
}

func TestGuestResolvesLocalhost(t *testing.T) {
	out := runGuest(t, nil, "resolve", "localhost")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if lines[0] != "127.0.0.1" {
		t.Fatalf("guest resolved localhost to %q, want 127.0.0.1 first", lines)
	}
}

func TestGuestHTTPClientKeepsConnectionAlive(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "got %s", r.URL.Path)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()

	const n = 5
	out := runGuest(t, nil, "http", srv.URL, fmt.Sprint(n))
	var want strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&want, "got /%d\n", i)
	}
	if out != want.String() {
		t.Fatalf("guest printed %q, want %q", out, want.String())
	}
	if c := conns.Load(); c != 1 {
		t.Fatalf("the guest's %d requests used %d connections, want 1 kept alive", n, c)
	}
}

func TestGuestUDP(t *testing.T) {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo(buf[:n], from)
		}
	}()
	out := runGuest(t, nil, "udp", pc.LocalAddr().String(), "datagram")
	if !strings.Contains(out, "reply=datagram\n") {
		t.Fatalf("guest output %q has no echoed datagram", out)
	}
	if !strings.Contains(out, "remote="+pc.LocalAddr().String()+"\n") {
		t.Fatalf("guest output %q does not name the UDP peer %s", out, pc.LocalAddr())
	}
}

func TestGuestConnectRefused(t *testing.T) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	out := runGuest(t, nil, "refused", addr)
	if !strings.HasPrefix(out, "refused=true ") {
		t.Fatalf("guest output %q: the dial error is not ECONNREFUSED", out)
	}
}

// TestGuestServesAndDials has the guest serve HTTP on its preopened
// listener and, for each request, call out to another server.
func TestGuestServesAndDials(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "upstream %s", strings.TrimPrefix(r.URL.Path, "/"))
	}))
	defer upstream.Close()

	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	table, err := wasisock.NewTable(l)
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	g := startGuest(t, table, "proxy", upstream.URL)

	hc := &http.Client{Timeout: time.Minute}
	defer hc.CloseIdleConnections()
	for i := 0; i < 5; i++ {
		resp, err := hc.Get(fmt.Sprintf("http://%s/p/r%d", addr, i))
		if err != nil {
			t.Fatalf("GET through the guest: %v (guest stderr: %s)", err, g.Stderr.String())
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		want := fmt.Sprintf("via guest: upstream r%d", i)
		if err != nil || resp.StatusCode != http.StatusOK || string(b) != want {
			t.Fatalf("GET %d: %d %q (err %v), want 200 %q", i, resp.StatusCode, b, err, want)
		}
	}
}

// TestGuestDispatchrunCallingStyle runs calls shaped as Go's dispatchrun/net
// makes them (getsockopt length by value, self-chained addrinfo records).
func TestGuestDispatchrunCallingStyle(t *testing.T) {
	l := echoTCP(t, "tcp4", "127.0.0.1:0")
	_, port, _ := net.SplitHostPort(l.Addr().String())
	out := runGuest(t, nil, "compat", "localhost", port, "compat hello")
	for _, want := range []string{
		"getaddrinfo n=1 family=1 port=" + port + " addr=127.0.0.1\n",
		"peer family=1 addr=127.0.0.1 port=" + port + "\n",
		"reply=compat hello\n",
	} {
		if !strings.Contains(out, want) {
			t.Fatalf("guest output %q lacks %q", out, want)
		}
	}
}
