package prober

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func splitHostPort(t *testing.T, addr string) (string, int) {
	t.Helper()
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	port, _ := strconv.Atoi(p)
	return host, port
}

func TestHTTPCheck(t *testing.T) {
	var gotAgent, gotHeader, gotAccept string
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer other.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			gotAgent, gotHeader, gotAccept = r.UserAgent(), r.Header.Get("X-Probe"), r.Header.Get("Accept")
			w.Write([]byte("fine"))
		case "/local":
			http.Redirect(w, r, "/ok", http.StatusFound)
		case "/away":
			http.Redirect(w, r, strings.Replace(other.URL, "127.0.0.1", "localhost", 1)+"/x", http.StatusFound)
		default:
			http.Error(w, "broken", http.StatusInternalServerError)
		}
	}))
	defer srv.Close()
	host, port := splitHostPort(t, srv.Listener.Addr().String())
	c := newChecker(nil, agentName("kube-probe"))
	container := &corev1.Container{Ports: []corev1.ContainerPort{{Name: "web", ContainerPort: int32(port)}}}
	tg := Target{Container: container, PodIP: host}
	probe := func(path string, port intstr.IntOrString) *corev1.Probe {
		return &corev1.Probe{TimeoutSeconds: 2, ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
			Path: path, Port: port, HTTPHeaders: []corev1.HTTPHeader{{Name: "X-Probe", Value: "yes"}},
		}}}
	}
	for _, tc := range []struct {
		path   string
		port   intstr.IntOrString
		want   Result
		output string
	}{
		{"/ok", intstr.FromString("web"), Success, "fine"},
		{"/local", intstr.FromInt32(int32(port)), Success, "fine"},
		{"/away", intstr.FromInt32(int32(port)), Warning, "Probe terminated redirects, Response body: "},
		{"/bad", intstr.FromString(strconv.Itoa(port)), Failure, "HTTP probe failed with statuscode: 500"},
	} {
		r, out, err := c.check(context.Background(), probe(tc.path, tc.port), tg)
		if err != nil || r != tc.want || !strings.HasPrefix(out, tc.output) {
			t.Errorf("GET %s: %s %q %v; want %s %q", tc.path, r, out, err, tc.want, tc.output)
		}
	}
	if want := "kube-probe/1."; !strings.HasPrefix(gotAgent, want) || strings.Count(gotAgent, ".") != 1 {
		t.Errorf("User-Agent %q, want kube-probe/<major>.<minor>", gotAgent)
	}
	if gotHeader != "yes" || gotAccept != "*/*" {
		t.Errorf("headers X-Probe %q, Accept %q", gotHeader, gotAccept)
	}
	if _, _, err := c.check(context.Background(), probe("/ok", intstr.FromString("nope")), tg); err == nil || err.Error() != "port nope not found" {
		t.Errorf("unknown named port: %v", err)
	}
}

func TestTCPCheck(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	host, port := splitHostPort(t, l.Addr().String())
	p := &corev1.Probe{TimeoutSeconds: 1, ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(int32(port))}}}
	c := newChecker(nil, "")
	if r, out, err := c.check(context.Background(), p, Target{PodIP: host}); r != Success || err != nil {
		t.Errorf("open port: %s %q %v", r, out, err)
	}
	l.Close()
	r, out, err := c.check(context.Background(), p, Target{PodIP: host})
	if r != Failure || err != nil || !strings.Contains(out, "connection refused") {
		t.Errorf("closed port: %s %q %v; want a refused connection", r, out, err)
	}
}

func TestGRPCCheck(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	hs := health.NewServer()
	hs.SetServingStatus("up", healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus("down", healthpb.HealthCheckResponse_NOT_SERVING)
	healthpb.RegisterHealthServer(srv, hs)
	go srv.Serve(l)
	defer srv.Stop()
	host, port := splitHostPort(t, l.Addr().String())
	c := newChecker(nil, agentName("kube-probe"))
	check := func(service *string) (Result, string) {
		p := &corev1.Probe{TimeoutSeconds: 2, ProbeHandler: corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: int32(port), Service: service}}}
		r, out, err := c.check(context.Background(), p, Target{PodIP: host})
		if err != nil {
			t.Fatalf("grpc check: %v", err)
		}
		return r, out
	}
	up, down, unknown := "up", "down", "unknown"
	if r, out := check(nil); r != Success {
		t.Errorf("overall health: %s %q", r, out)
	}
	if r, out := check(&up); r != Success {
		t.Errorf("service up: %s %q", r, out)
	}
	if r, out := check(&down); r != Failure || out != `service unhealthy (responded with "NOT_SERVING")` {
		t.Errorf("service down: %s %q", r, out)
	}
	if r, out := check(&unknown); r != Failure || !strings.HasPrefix(out, "error: health rpc probe failed: ") {
		t.Errorf("unknown service: %s %q", r, out)
	}
}
