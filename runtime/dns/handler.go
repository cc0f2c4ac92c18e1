package dns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// forwardTimeout bounds one exchange with one upstream; a query fails over
// to the next upstream after it.
const forwardTimeout = 2 * time.Second

// maxChase bounds the ExternalName Services followed inside the zone.
const maxChase = 8

// ServeDNS answers one query: from the index inside the cluster domain
// and for the cluster's reverse names, from the upstreams otherwise.
func (s *Server) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("dns handler panicked", "panic", p)
			m := new(dns.Msg)
			m.SetRcode(req, dns.RcodeServerFailure)
			_ = w.WriteMsg(m)
		}
	}()
	_, udp := w.RemoteAddr().(*net.UDPAddr)
	m := s.handle(s.baseCtx, req, !udp)
	if udp {
		size := dns.MinMsgSize
		if opt := req.IsEdns0(); opt != nil {
			size = int(opt.UDPSize())
		}
		m.Truncate(size)
	}
	if err := w.WriteMsg(m); err != nil {
		s.log.Debug("writing a dns reply", "err", err)
	}
}

// handle computes the reply to req; tcp tells how it arrived, so that
// forwarding uses the same transport.
func (s *Server) handle(ctx context.Context, req *dns.Msg, tcp bool) *dns.Msg {
	m := new(dns.Msg)
	if req.Opcode != dns.OpcodeQuery {
		return m.SetRcode(req, dns.RcodeNotImplemented)
	}
	if len(req.Question) != 1 {
		return m.SetRcode(req, dns.RcodeFormatError)
	}
	q := req.Question[0]
	qname := strings.ToLower(dns.Fqdn(q.Name))
	if rel, ok := s.inZone(qname); ok {
		return s.answerZone(ctx, req, rel, tcp)
	}
	if q.Qtype == dns.TypePTR {
		if rr, ok := s.lookupPTR(q.Name, qname); ok {
			m.SetReply(req)
			m.Authoritative, m.RecursionAvailable = true, true
			m.Answer = []dns.RR{rr}
			return m
		}
	}
	return s.forward(ctx, req, tcp)
}

// answerZone answers a question inside the cluster domain; such questions
// are never forwarded.
func (s *Server) answerZone(ctx context.Context, req *dns.Msg, rel []string, tcp bool) *dns.Msg {
	q := req.Question[0]
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative, m.RecursionAvailable = true, true
	if q.Qclass != dns.ClassINET && q.Qclass != dns.ClassANY {
		return m.SetRcode(req, dns.RcodeRefused)
	}
	r := s.lookup(q.Name, rel, q.Qtype)
	m.Answer, m.Extra = r.answer, r.extra
	if !r.exists {
		m.Rcode = dns.RcodeNameError
	}
	// An ExternalName's CNAME: resolve the target too, as CoreDNS does,
	// unless the CNAME itself was asked for.
	for chased := 0; r.target != "" && q.Qtype != dns.TypeCNAME; chased++ {
		target := r.target
		if rel, ok := s.inZone(target); ok {
			if chased == maxChase {
				break
			}
			r = s.lookup(target, rel, q.Qtype)
			m.Answer = append(m.Answer, r.answer...)
			m.Extra = append(m.Extra, r.extra...)
			continue
		}
		up := new(dns.Msg)
		up.SetQuestion(target, q.Qtype)
		if resp := s.forward(ctx, up, tcp); resp.Rcode == dns.RcodeSuccess {
			m.Answer = append(m.Answer, resp.Answer...)
		}
		break
	}
	if len(m.Answer) == 0 {
		m.Ns = []dns.RR{s.soa(s.zone)}
	}
	return m
}

// forward sends req to the upstreams in order until one answers, and
// returns its reply under req's id, or SERVFAIL when none does.
func (s *Server) forward(ctx context.Context, req *dns.Msg, tcp bool) *dns.Msg {
	resp, err := s.fwd.exchange(ctx, req, tcp)
	if err != nil {
		s.log.Debug("forwarding failed", "name", req.Question[0].Name, "err", err)
		m := new(dns.Msg)
		m.SetRcode(req, dns.RcodeServerFailure)
		m.RecursionAvailable = true
		return m
	}
	resp.Id = req.Id
	return resp
}

// forwarder is the client side towards the node's nameservers.
type forwarder struct {
	upstreams []string
	udp, tcp  *dns.Client
}

func newForwarder(upstreams []string) *forwarder {
	return &forwarder{
		upstreams: upstreams,
		udp:       &dns.Client{Net: "udp", Timeout: forwardTimeout},
		tcp:       &dns.Client{Net: "tcp", Timeout: forwardTimeout},
	}
}

var errNoUpstreams = errors.New("no upstream nameservers")

func (f *forwarder) exchange(ctx context.Context, req *dns.Msg, tcp bool) (*dns.Msg, error) {
	if len(f.upstreams) == 0 {
		return nil, errNoUpstreams
	}
	var errs []error
	for _, u := range f.upstreams {
		resp, err := f.try(ctx, req, u, tcp)
		if err == nil {
			return resp, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", u, err))
	}
	return nil, errors.Join(errs...)
}

// try asks one upstream, over UDP first unless the client used TCP, and
// again over TCP when the UDP reply was truncated.
func (f *forwarder) try(ctx context.Context, req *dns.Msg, upstream string, tcp bool) (*dns.Msg, error) {
	if !tcp {
		resp, _, err := f.udp.ExchangeContext(ctx, req, upstream)
		if err != nil {
			return nil, err
		}
		if !resp.Truncated {
			return resp, nil
		}
	}
	resp, _, err := f.tcp.ExchangeContext(ctx, req, upstream)
	return resp, err
}
