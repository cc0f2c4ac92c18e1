package lb

import (
	"bufio"
	"fmt"
	"net"
	"testing"
	"time"
)

// BenchmarkNodePortRequest measures a request/response round trip on one
// TCP connection from outside the node, through node_ip:30007 (destination
// NAT on the way in, source NAT on the way back) and straight to the pod's
// address (the same forwarding, the programs attached but not rewriting),
// alternating between the two in the same run.
func BenchmarkNodePortRequest(b *testing.B) {
	tp := newTopo(b)
	objs := loadAttach(b, tp)
	serveTCP(b, tp.pod, ":8080", "a")
	tcPutService(b, objs, 1, nodePort(30007), Service{Backends: []Backend{{Addr: topoPod, Port: 8080}}})

	type path struct {
		c     net.Conn
		r     *bufio.Reader
		total time.Duration
	}
	open := func(addr string) *path {
		c, err := dial(b, tp.outside, "tcp4", addr)
		mustDo(b, "connect to "+addr, err)
		b.Cleanup(func() { c.Close() })
		return &path{c: c, r: bufio.NewReader(c)}
	}
	nodePortPath := open(hostPort(topoNodeIP, 30007))
	direct := open(hostPort(topoPod, 8080))
	roundTrip := func(p *path) {
		start := time.Now()
		if _, err := fmt.Fprint(p.c, "ping\n"); err != nil {
			b.Fatal(err)
		}
		if _, err := p.r.ReadString('\n'); err != nil {
			b.Fatal(err)
		}
		p.total += time.Since(start)
	}
	roundTrip(nodePortPath)
	roundTrip(direct)
	nodePortPath.total, direct.total = 0, 0

	b.ResetTimer()
	for range b.N {
		roundTrip(nodePortPath)
		roundTrip(direct)
	}
	b.ReportMetric(float64(nodePortPath.total.Nanoseconds())/float64(b.N), "nodeport-ns/req")
	b.ReportMetric(float64(direct.total.Nanoseconds())/float64(b.N), "direct-ns/req")
}
