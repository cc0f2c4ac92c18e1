package dns

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// BenchmarkLookup measures A lookups of one Service among 10,000: through
// the handler alone, and over a real UDP socket, sequentially and from
// parallel clients. Run with
//
//	go test -run XXX -bench BenchmarkLookup ./runtime/dns/
func BenchmarkLookup(b *testing.B) {
	const services = 10000
	objs := make([]runtime.Object, 0, services)
	for i := range services {
		objs = append(objs, clusterIPService(fmt.Sprintf("ns%d", i%100), fmt.Sprintf("svc%d", i),
			[]string{fmt.Sprintf("10.96.%d.%d", 1+i/250, 1+i%250)},
			corev1.ServicePort{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}))
	}
	s, _, addr := startDNS(b, nil, objs...)
	const name = "svc4321.ns21.svc.cluster.local."
	want := "10.96.18.72"
	check := func(r *dns.Msg) error {
		if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != want {
			return fmt.Errorf("lookup of %s: %v", name, r)
		}
		return nil
	}
	qps := func(b *testing.B, start time.Time) {
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "queries/s")
	}

	b.Run("handler", func(b *testing.B) {
		req := new(dns.Msg)
		req.SetQuestion(name, dns.TypeA)
		start := time.Now()
		for b.Loop() {
			if err := check(s.handle(context.Background(), req, false)); err != nil {
				b.Fatal(err)
			}
		}
		qps(b, start)
	})
	b.Run("udp", func(b *testing.B) {
		c := &dns.Client{Net: "udp", Timeout: 10 * time.Second}
		conn, err := c.Dial(addr)
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close()
		req := new(dns.Msg)
		req.SetQuestion(name, dns.TypeA)
		start := time.Now()
		for b.Loop() {
			req.Id = dns.Id()
			r, _, err := c.ExchangeWithConn(req, conn)
			if err == nil {
				err = check(r)
			}
			if err != nil {
				b.Fatal(err)
			}
		}
		qps(b, start)
	})
	b.Run("udp-parallel", func(b *testing.B) {
		start := time.Now()
		b.SetParallelism(4)
		b.RunParallel(func(pb *testing.PB) {
			c := &dns.Client{Net: "udp", Timeout: 10 * time.Second}
			conn, err := c.Dial(addr)
			if err != nil {
				b.Error(err)
				return
			}
			defer conn.Close()
			req := new(dns.Msg)
			req.SetQuestion(name, dns.TypeA)
			for pb.Next() {
				req.Id = dns.Id()
				r, _, err := c.ExchangeWithConn(req, conn)
				if err == nil {
					err = check(r)
				}
				if err != nil {
					b.Error(err)
					return
				}
			}
		})
		qps(b, start)
	})
}
