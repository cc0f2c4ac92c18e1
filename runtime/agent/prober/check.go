package prober

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/wasmkube/wasmkube/internal/version"
	"github.com/wasmkube/wasmkube/runtime/oci"
)

// Result is what a probe concluded.
type Result int

const (
	// Unknown: no conclusion yet (a startup probe before its first run).
	Unknown Result = iota
	Success
	Failure
	// Warning counts as a success that deserves an event: an HTTP probe
	// that stopped at a redirect to another host.
	Warning
)

func (r Result) String() string {
	switch r {
	case Success:
		return "Success"
	case Failure:
		return "Failure"
	case Warning:
		return "Warning"
	}
	return "Unknown"
}

// maxOutput is how much of a probe's output or response body is kept:
// upstream's 10 KiB.
const maxOutput = 10 * 1024

// Execer runs a command inside a running container (runtime/oci).
type Execer interface {
	Exec(ctx context.Context, id string, o oci.ExecOptions) (int, error)
}

// Target is the container a check runs against.
type Target struct {
	// ContainerID is the runtime container's id, for exec.
	ContainerID string
	// Container is the spec, for named ports.
	Container *corev1.Container
	// PodIP is the default host of network checks.
	PodIP string
}

// checker runs one check of each kind; it is shared by all workers.
type checker struct {
	exec      Execer
	http      *http.Client // timeouts are set per request
	userAgent string
}

func newChecker(exec Execer, userAgent string) *checker {
	return &checker{exec: exec, userAgent: userAgent, http: newHTTPClient()}
}

// agentName is prefix/<major>.<minor> of the Kubernetes version served:
// kube-probe for probes, kube-lifecycle for hooks, as upstream names them.
func agentName(prefix string) string {
	v := strings.TrimPrefix(version.Kubernetes, "v")
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return prefix
	}
	return prefix + "/" + parts[0] + "." + parts[1]
}

// newHTTPClient is upstream's prober client: no proxy, no keep-alives (a
// probe must not hold connections open), no certificate verification, and
// redirects followed only to the same host, at most 10.
func newHTTPClient() *http.Client {
	tr := &http.Transport{
		Proxy:             nil,
		DisableKeepAlives: true,
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // probes do not verify, as upstream
		DialContext:       (&net.Dialer{KeepAlive: -1}).DialContext,
	}
	return &http.Client{
		Transport: tr,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if req.URL.Hostname() != via[0].URL.Hostname() {
				return http.ErrUseLastResponse
			}
			if len(via) >= 10 {
				return errors.New("stopped after 10 redirects")
			}
			return nil
		},
	}
}

// check runs p's handler once against t. An error means the check could
// not be made (a bad port, a container that is gone); the caller throws
// its result away.
func (c *checker) check(ctx context.Context, p *corev1.Probe, t Target) (Result, string, error) {
	timeout := time.Duration(p.TimeoutSeconds) * time.Second
	if timeout <= 0 {
		timeout = time.Second
	}
	switch h := p.ProbeHandler; {
	case h.Exec != nil:
		return c.checkExec(ctx, h.Exec.Command, t, timeout)
	case h.HTTPGet != nil:
		return c.checkHTTP(ctx, h.HTTPGet, t, timeout)
	case h.TCPSocket != nil:
		return checkTCP(ctx, h.TCPSocket, t, timeout)
	case h.GRPC != nil:
		return c.checkGRPC(ctx, h.GRPC, t, timeout)
	}
	return Unknown, "", errors.New("missing probe handler")
}

// checkExec runs cmd in the container: exit 0 is success, and the output
// (stdout and stderr together, 10 KiB at most) is the message.
func (c *checker) checkExec(ctx context.Context, cmd []string, t Target, timeout time.Duration) (Result, string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var out limitedBuffer
	code, err := c.exec.Exec(ctx, t.ContainerID, oci.ExecOptions{Cmd: cmd, Stdout: &out, Stderr: &out})
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
			return Failure, fmt.Sprintf("command %q timed out", strings.Join(cmd, " ")), nil
		}
		return Unknown, "", err
	}
	if code != 0 {
		return Failure, out.String(), nil
	}
	return Success, out.String(), nil
}

// checkHTTP GETs the action's URL from the node.
func (c *checker) checkHTTP(ctx context.Context, a *corev1.HTTPGetAction, t Target, timeout time.Duration) (Result, string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := newHTTPRequest(ctx, a, t, c.userAgent)
	if err != nil {
		return Unknown, "", err
	}
	res, err := c.http.Do(req)
	if err != nil {
		return Failure, err.Error(), nil
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, maxOutput))
	if err != nil {
		return Failure, "", err
	}
	body := string(b)
	switch {
	case res.StatusCode >= http.StatusOK && res.StatusCode < http.StatusMultipleChoices:
		return Success, body, nil
	case res.StatusCode >= http.StatusMultipleChoices && res.StatusCode < http.StatusBadRequest:
		return Warning, "Probe terminated redirects, Response body: " + body, nil
	}
	return Failure, fmt.Sprintf("HTTP probe failed with statuscode: %d", res.StatusCode), nil
}

// newHTTPRequest builds the GET an httpGet probe or hook makes: host
// defaults to the pod IP, named ports are the container's, httpHeaders are
// sent as given (Host among them), and User-Agent and Accept get defaults.
func newHTTPRequest(ctx context.Context, a *corev1.HTTPGetAction, t Target, userAgent string) (*http.Request, error) {
	port, err := resolvePort(a.Port, t.Container)
	if err != nil {
		return nil, err
	}
	host := a.Host
	if host == "" {
		host = t.PodIP
	}
	u, err := url.Parse(a.Path)
	if err != nil {
		u = &url.URL{Path: a.Path}
	}
	u.Scheme = strings.ToLower(string(a.Scheme))
	if u.Scheme == "" {
		u.Scheme = "http"
	}
	u.Host = net.JoinHostPort(host, strconv.Itoa(port))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	for _, h := range a.HTTPHeaders {
		req.Header.Add(h.Name, h.Value)
	}
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", userAgent)
	}
	if req.Header.Get("Accept") == "" {
		req.Header.Set("Accept", "*/*")
	}
	if h := req.Header.Get("Host"); h != "" {
		req.Host = h
	}
	return req, nil
}

// checkTCP succeeds when a connection opens.
func checkTCP(ctx context.Context, a *corev1.TCPSocketAction, t Target, timeout time.Duration) (Result, string, error) {
	port, err := resolvePort(a.Port, t.Container)
	if err != nil {
		return Unknown, "", err
	}
	host := a.Host
	if host == "" {
		host = t.PodIP
	}
	d := net.Dialer{Timeout: timeout}
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return Failure, err.Error(), nil
	}
	_ = conn.Close()
	return Success, "", nil
}

// checkGRPC calls grpc.health.v1.Health/Check on the pod IP.
func (c *checker) checkGRPC(ctx context.Context, a *corev1.GRPCAction, t Target, timeout time.Duration) (Result, string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	addr := net.JoinHostPort(t.PodIP, strconv.Itoa(int(a.Port)))
	conn, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithUserAgent(c.userAgent))
	if err != nil {
		return Failure, fmt.Sprintf("error: failed to connect service at %q: %+v", addr, err), nil
	}
	defer conn.Close()
	conn.Connect()
	for s := conn.GetState(); s != connectivity.Ready; s = conn.GetState() {
		if !conn.WaitForStateChange(ctx, s) {
			return Failure, fmt.Sprintf("timeout: failed to connect service %q within %v: %+v", addr, timeout, ctx.Err()), nil
		}
	}
	var service string
	if a.Service != nil {
		service = *a.Service
	}
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: service})
	if err != nil {
		if st, ok := status.FromError(err); ok {
			switch st.Code() {
			case codes.Unimplemented:
				return Failure, fmt.Sprintf("error: this server does not implement the grpc health protocol (grpc.health.v1.Health): %s", st.Message()), nil
			case codes.DeadlineExceeded:
				return Failure, fmt.Sprintf("timeout: health rpc did not complete within %v", timeout), nil
			}
		}
		return Failure, fmt.Sprintf("error: health rpc probe failed: %+v", err), nil
	}
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		return Failure, fmt.Sprintf("service unhealthy (responded with %q)", resp.GetStatus().String()), nil
	}
	return Success, "service healthy", nil
}

// resolvePort is upstream's: a number, a name among the container's
// ports, or a number written as a string.
func resolvePort(p intstr.IntOrString, c *corev1.Container) (int, error) {
	port := -1
	switch p.Type {
	case intstr.Int:
		port = p.IntValue()
	case intstr.String:
		found := false
		if c != nil {
			for _, cp := range c.Ports {
				if cp.Name == p.StrVal {
					port, found = int(cp.ContainerPort), true
					break
				}
			}
		}
		if !found {
			n, err := strconv.Atoi(p.StrVal)
			if err != nil {
				return -1, fmt.Errorf("port %s not found", p.StrVal)
			}
			port = n
		}
	default:
		return -1, fmt.Errorf("intOrString had no kind: %+v", p)
	}
	if port > 0 && port < 65536 {
		return port, nil
	}
	return port, fmt.Errorf("invalid port number: %v", port)
}

// limitedBuffer keeps the first maxOutput bytes written to it, from
// several streams at once.
type limitedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := maxOutput - b.buf.Len(); room > 0 {
		if len(p) > room {
			b.buf.Write(p[:room])
		} else {
			b.buf.Write(p)
		}
	}
	return len(p), nil
}

func (b *limitedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
