package main

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/wasmkube/wasmkube/ebpf/lb"
)

func TestPrintServicesSaysWhoseTrafficEachFrontendTranslates(t *testing.T) {
	backend := lb.Backend{Addr: netip.MustParseAddr("10.244.0.5"), Port: 80}
	frontend := func(addr string, port uint16, scope lb.Scope) lb.Frontend {
		return lb.Frontend{Addr: netip.MustParseAddr(addr), Port: port, Proto: lb.TCP, Scope: scope}
	}
	entries := []lb.Entry{
		{Frontend: frontend("10.96.0.34", 80, lb.ScopeSocket), Service: lb.Service{Backends: []lb.Backend{backend}, AffinityTimeout: 3 * time.Hour}},
		{Frontend: frontend("127.0.0.1", 30007, lb.ScopeSocket), Service: lb.Service{Backends: []lb.Backend{backend}, HostOnly: true}},
		{Frontend: frontend("192.0.2.2", 30007, lb.ScopeSocket), Service: lb.Service{Backends: []lb.Backend{backend}, NodeAddr: true}},
		{Frontend: frontend("192.0.2.2", 30007, lb.ScopeExternal)},
	}
	var out bytes.Buffer
	if err := printServices(&out, entries); err != nil {
		t.Fatal(err)
	}
	want := [][]string{
		{"FRONTEND", "PROTO", "SCOPE", "FOR", "AFFINITY", "BACKENDS"},
		{"10.96.0.34:80", "TCP", "socket", "all", "3h0m0s", "10.244.0.5:80"},
		{"127.0.0.1:30007", "TCP", "socket", "host", "-", "10.244.0.5:80"},
		{"192.0.2.2:30007", "TCP", "socket", "host,pods", "-", "10.244.0.5:80"},
		{"192.0.2.2:30007", "TCP", "external", "outside", "-", "<none>"},
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != len(want) {
		t.Fatalf("got %d lines, want %d:\n%s", len(lines), len(want), out.String())
	}
	for i, line := range lines {
		if got := strings.Fields(line); strings.Join(got, " ") != strings.Join(want[i], " ") {
			t.Errorf("line %d: got %q, want %q", i, got, want[i])
		}
	}
}
