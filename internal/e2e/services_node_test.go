package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/wasmkube/wasmkube/internal/testimages"
)

// svcNamespace holds the Services test's objects.
const svcNamespace = "svc-e2e"

// TestServices runs the Service acceptance tests against one `wasmkube up`
// whose node IP sits on a link to an outside host (a namespace of the
// test's), then checks the node wrote no firewall rule.
func TestServices(t *testing.T) {
	before := FirewallRules(t)
	out := NewOutsideHost(t)
	nt := startNodeTest(t, NodeOptions{Args: []string{"--node-ip", OutsideNodeIP, "--loadbalancer-ip-range", "203.0.113.16/28"}},
		helloImage, busyboxImage, wasmImage)
	ns := nt.namespace(t, svcNamespace)
	nt.apply(t, ns, servicesManifest())
	nt.apply(t, ns, seedServiceManifest(t))
	for _, d := range []string{"web-oci", "web-wasm", "nginx-deployment"} {
		nt.MustKubectl(t, "-n", ns, "rollout", "status", "deploy/"+d, "--timeout=120s")
	}
	nt.waitRunning(t, ns, "client")
	st := &servicesTest{nodeTest: nt, ns: ns, out: out}

	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, st *servicesTest)
	}{
		{"ClusterIPByNameMixedPods", testClusterIPByName},
		{"UDPDNSThroughTheService", testDNSOverUDP},
		{"Headless", testHeadless},
		{"ExternalName", testExternalName},
		{"SeedNodePortFromOutside", testNodePortFromOutside},
		{"NodePortFromTheNode", testNodePortFromNode},
		{"NodePortFromAPodThroughItsNodeIP", testNodePortFromPod},
		{"ExternalTrafficPolicyLocal", testExternalTrafficLocal},
		{"LoadBalancer", testLoadBalancer},
		{"Masquerade", testMasquerade},
		{"SessionAffinity", testSessionAffinity},
		{"NoEndpointsRefused", testNoEndpointsRefused},
		{"EndpointChanges", testEndpointChanges},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, st) })
	}
	if after := FirewallRules(t); after != before {
		t.Errorf("the node changed the firewall rules:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

type servicesTest struct {
	*nodeTest
	ns  string
	out *OutsideHost
}

// servicesManifest: one Service "web" over two Deployments, one of OCI
// pods and one of wasm pods; a client pod; and the Services each subtest
// looks at.
func servicesManifest() string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: web-oci
spec:
  replicas: 2
  selector:
    matchLabels: {app: web, kind: oci}
  template:
    metadata:
      labels: {app: web, kind: oci}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
      - name: hello
        image: %[1]s
        imagePullPolicy: Never
        ports:
        - {name: http, containerPort: 8080}
        readinessProbe:
          httpGet: {path: /, port: 8080}
          periodSeconds: 1
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web-wasm
spec:
  replicas: 2
  selector:
    matchLabels: {app: web, kind: wasm}
  template:
    metadata:
      labels: {app: web, kind: wasm}
    spec:
      runtimeClassName: wasm
      terminationGracePeriodSeconds: 2
      containers:
      - name: app
        image: %[2]s
        imagePullPolicy: Never
        ports:
        - {name: http, containerPort: 8080}
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: http}
---
apiVersion: v1
kind: Service
metadata:
  name: web-headless
spec:
  clusterIP: None
  selector: {app: web}
  ports:
  - {name: http, port: 8080}
---
apiVersion: v1
kind: Service
metadata:
  name: web-alias
spec:
  type: ExternalName
  externalName: web.%[3]s.svc.cluster.local
---
apiVersion: v1
kind: Service
metadata:
  name: sticky
spec:
  selector: {app: web, kind: oci}
  sessionAffinity: ClientIP
  ports:
  - {port: 80, targetPort: 8080}
---
apiVersion: v1
kind: Service
metadata:
  name: local
spec:
  type: NodePort
  externalTrafficPolicy: Local
  selector: {app: web, kind: oci}
  ports:
  - {port: 80, targetPort: 8080, nodePort: 30008}
---
apiVersion: v1
kind: Service
metadata:
  name: lb
spec:
  type: LoadBalancer
  selector: {app: web, kind: oci}
  ports:
  - {port: 8000, targetPort: 8080}
---
apiVersion: v1
kind: Service
metadata:
  name: nobody
spec:
  type: NodePort
  selector: {app: nobody}
  ports:
  - {port: 80}
---
apiVersion: v1
kind: Pod
metadata:
  name: client
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: client
    image: %[1]s
    imagePullPolicy: Never
    env:
    - {name: HELLO_ADDR, value: "127.0.0.1:9999"}
  - name: dns
    image: %[4]s
    imagePullPolicy: Never
    command: ["sleep", "3600"]
`, helloImage, wasmImage, svcNamespace, busyboxImage)
}

// seedServiceManifest is examples/nginx-service.yaml with the hello server,
// on port 80, in place of nginx.
func seedServiceManifest(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(repoFile(t, "examples/nginx-service.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	m := string(b)
	const shipped = "        image: nginx:latest\n"
	if !strings.Contains(m, shipped) {
		t.Fatalf("examples/nginx-service.yaml no longer has %q; update the test", shipped)
	}
	return strings.Replace(m, shipped, fmt.Sprintf("        image: %s\n        imagePullPolicy: Never\n        env:\n        - {name: HELLO_ADDR, value: \":80\"}\n", helloImage), 1)
}

// clientGet fetches url in the client pod, on a new connection, with Go's
// resolver reading the pod's resolv.conf.
func (st *servicesTest) clientGet(t *testing.T, url string) (string, error) {
	t.Helper()
	r := st.Kubectl(t, "-n", st.ns, "exec", "client", "-c", "client", "--", testimages.HelloBinary, "get", url)
	if r.ExitCode != 0 {
		return r.Stdout, fmt.Errorf("GET %s in the client pod: exit %d: %s", url, r.ExitCode, r.Stderr)
	}
	return r.Stdout, nil
}

// lookup resolves name with busybox's nslookup in the client pod, through
// the pod's resolv.conf (the cluster DNS Service) unless a server follows
// the name in args; options go before it.
func (st *servicesTest) lookup(t *testing.T, opts []string, name string, server ...string) string {
	t.Helper()
	argv := append([]string{"-n", st.ns, "exec", "client", "-c", "dns", "--", "nslookup"}, opts...)
	r := st.Kubectl(t, append(append(argv, name), server...)...)
	if r.ExitCode != 0 {
		t.Fatalf("nslookup %s: exit %d\n%s%s", name, r.ExitCode, r.Stdout, r.Stderr)
	}
	return r.Stdout
}

// answers are the addresses nslookup printed for the name, without the
// server's own (which carries a port).
func answers(nslookup string) []string {
	var out []string
	named := false
	for _, line := range strings.Split(nslookup, "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "Name:") {
			named = true
		}
		if v, ok := strings.CutPrefix(line, "Address:"); ok && named {
			if ip := strings.TrimSpace(v); net.ParseIP(ip) != nil {
				out = append(out, ip)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func (st *servicesTest) clusterIP(t *testing.T, svc string) string {
	t.Helper()
	s, err := st.Client.CoreV1().Services(st.ns).Get(context.Background(), svc, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return s.Spec.ClusterIP
}

// podIPs are the IPs of the namespace's pods matching selector.
func (st *servicesTest) podIPs(t *testing.T, selector string) []string {
	t.Helper()
	out := st.MustKubectl(t, "-n", st.ns, "get", "pods", "-l", selector, "-o", `jsonpath={range .items[*]}{.status.podIP}{"\n"}{end}`)
	ips := strings.Fields(out)
	slices.Sort(ips)
	return ips
}

// responders asks url n times through get and counts the answers.
func responders(t *testing.T, n int, url string, get func(*testing.T, string) (string, error)) map[string]int {
	t.Helper()
	seen := map[string]int{}
	for range n {
		body, err := get(t, url)
		if err != nil {
			t.Fatal(err)
		}
		seen[strings.TrimSpace(body)]++
	}
	return seen
}

func testClusterIPByName(t *testing.T, st *servicesTest) {
	seen := responders(t, 24, "http://web."+st.ns+".svc.cluster.local/", st.clientGet)
	var oci, wasm int
	for body := range seen {
		switch {
		case strings.HasPrefix(body, "hello from wasm web-wasm-"):
			wasm++
		case strings.HasPrefix(body, "hello from web-oci-"):
			oci++
		default:
			t.Errorf("unexpected answer %q", body)
		}
	}
	if oci == 0 || wasm == 0 {
		t.Errorf("the Service reached %d OCI and %d wasm pods, want both kinds: %v", oci, wasm, seen)
	}
	// The short name, through the pod's search domains.
	if body, err := st.clientGet(t, "http://web/"); err != nil || !strings.HasPrefix(body, "hello from") {
		t.Errorf("http://web/: %q, %v", body, err)
	}
}

func testDNSOverUDP(t *testing.T, st *servicesTest) {
	dnsIP := st.DNSServiceIP(t)
	resolv := st.MustKubectl(t, "-n", st.ns, "exec", "client", "-c", "dns", "--", "cat", "/etc/resolv.conf")
	for _, want := range []string{"nameserver " + dnsIP, "search " + st.ns + ".svc.cluster.local svc.cluster.local cluster.local", "options ndots:5"} {
		if !strings.Contains(resolv, want) {
			t.Errorf("the pod's resolv.conf lacks %q:\n%s", want, resolv)
		}
	}
	// nslookup asks over UDP, to the kube-dns ClusterIP: the Service's
	// UDP frontend, answered through recvmsg4's reverse translation.
	got := answers(st.lookup(t, nil, "web."+st.ns+".svc.cluster.local", dnsIP))
	if want := []string{st.clusterIP(t, "web")}; !slices.Equal(got, want) {
		t.Errorf("web resolves to %v, want its ClusterIP %v", got, want)
	}
	pod := strings.ReplaceAll(st.podIPs(t, "kind=oci")[0], ".", "-")
	if got := answers(st.lookup(t, nil, pod+"."+st.ns+".pod.cluster.local")); len(got) != 1 || strings.ReplaceAll(got[0], ".", "-") != pod {
		t.Errorf("%s.%s.pod.cluster.local resolves to %v", pod, st.ns, got)
	}
}

func testHeadless(t *testing.T, st *servicesTest) {
	want := st.podIPs(t, "app=web")
	if got := answers(st.lookup(t, nil, "web-headless."+st.ns+".svc.cluster.local")); !slices.Equal(got, want) {
		t.Errorf("the headless Service resolves to %v, want the pods' IPs %v", got, want)
	}
	out := st.lookup(t, []string{"-type=srv"}, "_http._tcp.web-headless."+st.ns+".svc.cluster.local")
	if strings.Count(out, " 8080 ") != len(want) {
		t.Errorf("SRV of the headless Service, want %d targets on port 8080:\n%s", len(want), out)
	}
}

func testExternalName(t *testing.T, st *servicesTest) {
	out := st.lookup(t, nil, "web-alias."+st.ns+".svc.cluster.local")
	if !strings.Contains(out, "canonical name = web."+st.ns+".svc.cluster.local") {
		t.Errorf("the ExternalName Service is no CNAME to web:\n%s", out)
	}
	if got, want := answers(out), st.clusterIP(t, "web"); !slices.Contains(got, want) {
		t.Errorf("web-alias resolves to %v, want web's ClusterIP %s among them", got, want)
	}
}

func testNodePortFromOutside(t *testing.T, st *servicesTest) {
	seen := map[string]bool{}
	for range 20 {
		body, err := st.out.HTTPGet("http://" + OutsideNodeIP + ":30007/")
		if err != nil {
			t.Fatalf("from outside to the node's port 30007: %v", err)
		}
		seen[strings.TrimSpace(body)] = true
	}
	if len(seen) != 2 {
		t.Errorf("the seed's NodePort Service reached %v, want both nginx-deployment pods", seen)
	}
	for body := range seen {
		if !strings.HasPrefix(body, "hello from nginx-deployment-") {
			t.Errorf("unexpected answer %q", body)
		}
	}
}

func testNodePortFromNode(t *testing.T, st *servicesTest) {
	for _, addr := range []string{OutsideNodeIP, "127.0.0.1"} {
		if body, err := httpGet("http://" + addr + ":30007/"); err != nil || !strings.HasPrefix(body, "hello from nginx-deployment-") {
			t.Errorf("from the node to %s:30007: %q, %v", addr, body, err)
		}
	}
}

func testExternalTrafficLocal(t *testing.T, st *servicesTest) {
	body, err := st.out.HTTPGet("http://" + OutsideNodeIP + ":30008/remote")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(body); got != OutsideHostIP {
		t.Errorf("with externalTrafficPolicy: Local the pod saw the client as %s, want %s", got, OutsideHostIP)
	}
}

func testLoadBalancer(t *testing.T, st *servicesTest) {
	var addr string
	deadline := time.Now().Add(30 * time.Second)
	for addr == "" && time.Now().Before(deadline) {
		addr = strings.TrimSpace(st.MustKubectl(t, "-n", st.ns, "get", "svc", "lb", "-o", "jsonpath={.status.loadBalancer.ingress[0].ip}"))
		if addr == "" {
			time.Sleep(200 * time.Millisecond)
		}
	}
	if a := net.ParseIP(addr); a == nil || !(&net.IPNet{IP: net.IPv4(203, 0, 113, 16), Mask: net.CIDRMask(28, 32)}).Contains(a) {
		t.Fatalf("status.loadBalancer.ingress ip %q, want one of --loadbalancer-ip-range 203.0.113.16/28", addr)
	}
	row := st.MustKubectl(t, "-n", st.ns, "get", "svc", "lb", "--no-headers")
	if !strings.Contains(row, addr) {
		t.Errorf("kubectl get svc shows no EXTERNAL-IP %s: %q", addr, row)
	}
	if body, err := st.out.HTTPGet("http://" + addr + ":8000/"); err != nil || !strings.HasPrefix(body, "hello from web-oci-") {
		t.Errorf("from outside to the LoadBalancer address %s:8000: %q, %v", addr, body, err)
	}
}

func testMasquerade(t *testing.T, st *servicesTest) {
	l, err := st.out.Listen("tcp", OutsideHostIP+":9000")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			ip, _, _ := net.SplitHostPort(c.RemoteAddr().String())
			fmt.Fprintf(c, "HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n%s\n", len(ip)+1, ip)
			c.Close()
		}
	}()
	body, err := st.clientGet(t, "http://"+OutsideHostIP+":9000/")
	if err != nil {
		t.Fatalf("a pod reaching a host beyond the node: %v", err)
	}
	if got := strings.TrimSpace(body); got != OutsideNodeIP {
		t.Errorf("the outside host saw the pod as %s, want the node's address %s", got, OutsideNodeIP)
	}
}

func testSessionAffinity(t *testing.T, st *servicesTest) {
	sticky := responders(t, 12, "http://sticky/", st.clientGet)
	if len(sticky) != 1 {
		t.Errorf("sessionAffinity ClientIP: one client reached %v, want a single pod", sticky)
	}
	plain := responders(t, 12, "http://web/", st.clientGet)
	if len(plain) < 2 {
		t.Errorf("without affinity one client reached only %v", plain)
	}
}

func testNoEndpointsRefused(t *testing.T, st *servicesTest) {
	addr := net.JoinHostPort(st.clusterIP(t, "nobody"), "80")
	_, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("connect to the endpoint-less Service %s: %v, want connection refused", addr, err)
	}
	if _, err := st.clientGet(t, "http://nobody/"); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("from a pod to the endpoint-less Service: %v, want connection refused", err)
	}
	// From outside, through its NodePort: tc answers the SYN with an ICMP
	// port unreachable, which the outside host's TCP reports as a refusal
	// (a dropped SYN would be retried until the timeout).
	nodePort := st.MustKubectl(t, "-n", st.ns, "get", "svc", "nobody", "-o", "jsonpath={.spec.ports[0].nodePort}")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := st.out.Dial(ctx, "tcp", net.JoinHostPort(OutsideNodeIP, strings.TrimSpace(nodePort)))
	if err == nil {
		conn.Close()
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("from outside to the endpoint-less Service's NodePort %s: %v, want connection refused", nodePort, err)
	}
}

func testEndpointChanges(t *testing.T, st *servicesTest) {
	vip := st.clusterIP(t, "web")
	before := st.programmedBackends(t, vip+":80")
	st.MustKubectl(t, "-n", st.ns, "scale", "deploy/web-oci", "--replicas=3")
	st.MustKubectl(t, "-n", st.ns, "rollout", "status", "deploy/web-oci", "--timeout=120s")
	var added string
	deadline := time.Now().Add(podTimeout)
	var sliceSeen time.Time
	for added == "" && time.Now().Before(deadline) {
		for _, ip := range st.podIPs(t, "kind=oci") {
			if !slices.Contains(before, ip+":8080") && st.sliceHasReady(t, "web", ip) {
				added, sliceSeen = ip+":8080", time.Now()
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if added == "" {
		t.Fatal("no new ready endpoint in web's EndpointSlices after scaling")
	}
	var programmed time.Duration
	for {
		if slices.Contains(st.programmedBackends(t, vip+":80"), added) {
			programmed = time.Since(sliceSeen)
			break
		}
		if time.Since(sliceSeen) > 10*time.Second {
			t.Fatalf("the new endpoint %s never reached the maps", added)
		}
	}
	t.Logf("new endpoint programmed %v after the EndpointSlice showed it (upper bound: includes one `wasmkube agent services` run)", programmed)
	if programmed > time.Second {
		t.Errorf("the backends changed %v after the EndpointSlice did, want within a second", programmed)
	}
	st.MustKubectl(t, "-n", st.ns, "scale", "deploy/web-oci", "--replicas=2")
}

// sliceHasReady says whether svc's EndpointSlices list ip as ready.
func (st *servicesTest) sliceHasReady(t *testing.T, svc, ip string) bool {
	t.Helper()
	slices, err := st.Client.DiscoveryV1().EndpointSlices(st.ns).List(context.Background(), metav1.ListOptions{LabelSelector: "kubernetes.io/service-name=" + svc})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range slices.Items {
		for _, e := range s.Endpoints {
			if e.Conditions.Ready != nil && *e.Conditions.Ready && len(e.Addresses) > 0 && e.Addresses[0] == ip {
				return true
			}
		}
	}
	return false
}

// programmedBackends reads the node's maps with `wasmkube agent services`
// and returns the backends of the socket-scope TCP frontend.
func (st *servicesTest) programmedBackends(t *testing.T, frontend string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), CommandTimeout)
	defer cancel()
	b, err := exec.CommandContext(ctx, st.Bin, "agent", "services", "--node-name", st.Name).CombinedOutput()
	if err != nil {
		t.Fatalf("wasmkube agent services: %v\n%s", err, b)
	}
	out := string(b)
	lines := strings.Split(out, "\n")
	backends := slices.Index(strings.Fields(lines[0]), "BACKENDS")
	if backends < 0 {
		t.Fatalf("no BACKENDS column:\n%s", out)
	}
	for _, line := range lines[1:] {
		f := strings.Fields(line)
		if len(f) > backends && f[0] == frontend && f[1] == "TCP" && f[2] == "socket" {
			if f[backends] == "<none>" {
				return nil
			}
			return strings.Split(f[backends], ",")
		}
	}
	t.Fatalf("frontend %s not programmed:\n%s", frontend, out)
	return nil
}
