package auth_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/wasmkube/wasmkube/control/auth"
	"github.com/wasmkube/wasmkube/internal/pki"
)

const unauthorizedBody = `{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}` + "\n"

// whoami is what the protected test handler returns.
type whoami struct {
	Name   string   `json:"name"`
	Groups []string `json:"groups"`
}

type fixture struct {
	dir        string
	ca         *pki.CA
	srv        *httptest.Server
	kubeconfig string
	tokenFile  string
	tokens     *auth.Tokens
}

// testAttrs is a minimal request-info parser for /api/v1 paths: enough to
// exercise resource attributes without depending on the server package.
func testAttrs(r *http.Request) auth.Attributes {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if len(parts) < 3 || parts[0] != "api" || parts[1] != "v1" {
		return auth.NonResourceAttributes(r)
	}
	a := auth.Attributes{ResourceRequest: true, Path: r.URL.Path}
	rest := parts[2:]
	if len(rest) >= 3 && rest[0] == "namespaces" {
		a.Namespace, rest = rest[1], rest[2:]
	}
	a.Resource = rest[0]
	if len(rest) > 1 {
		a.Name = rest[1]
	}
	switch r.Method {
	case http.MethodGet:
		a.Verb = "get"
		if a.Name == "" {
			a.Verb = "list"
		}
	case http.MethodPost:
		a.Verb = "create"
	case http.MethodDelete:
		a.Verb = "delete"
	default:
		a.Verb = strings.ToLower(r.Method)
	}
	return a
}

// devPolicy lets group "dev" read pods in "default" and nothing else.
func devPolicy(_ context.Context, a auth.Attributes) (bool, string, error) {
	if a.User.InGroup("dev") && a.ResourceRequest && a.Resource == "pods" && a.Namespace == "default" &&
		(a.Verb == "get" || a.Verb == "list") {
		return true, "", nil
	}
	return false, "", nil
}

func whoamiHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, ok := auth.UserFrom(r.Context())
		if !ok {
			http.Error(w, "no user in context", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(whoami{Name: u.Name, Groups: u.Groups})
	})
}

// newFixture starts a TLS server the way the API server runs: serving cert
// from the generated CA, client certs verified if given.
func newFixture(t *testing.T, clientAuth tls.ClientAuthType) *fixture {
	t.Helper()
	dir := t.TempDir()
	tlsDir := filepath.Join(dir, "tls")
	ca, err := pki.LoadOrCreateCA(tlsDir, "wasmkube-ca")
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, err := ca.LoadOrCreateServing(tlsDir, "apiserver", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	servingPair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	tokenFile := filepath.Join(dir, "tokens.csv")
	if err := os.WriteFile(tokenFile, []byte("bob-token,bob,uid-bob,\"dev,qa\"\ncarol-token,carol,uid-carol\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tokens, err := auth.NewTokens(tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	mw := auth.Middleware(
		auth.Union(auth.NewX509(ca.Pool()), tokens),
		auth.NewAuthorizer(auth.AuthorizerFunc(devPolicy)),
		auth.PublicInfoPath,
		testAttrs,
	)
	srv := httptest.NewUnstartedServer(mw(whoamiHandler()))
	srv.TLS = &tls.Config{
		Certificates: []tls.Certificate{servingPair},
		ClientCAs:    ca.Pool(),
		ClientAuth:   clientAuth,
		MinVersion:   tls.VersionTLS12,
	}
	// Handshake failures are expected in some tests; keep them out of the log.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)

	certPEM, keyPEM, err := ca.LoadOrCreateClient(tlsDir, "admin", "admin", []string{auth.GroupMasters})
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig := filepath.Join(dir, "admin.kubeconfig")
	if err := pki.WriteKubeconfig(kubeconfig, srv.URL, ca.CertPEM, certPEM, keyPEM, "admin"); err != nil {
		t.Fatal(err)
	}
	return &fixture{dir: dir, ca: ca, srv: srv, kubeconfig: kubeconfig, tokenFile: tokenFile, tokens: tokens}
}

// adminConfig loads the kubeconfig as kubectl would.
func (f *fixture) adminConfig(t *testing.T) *rest.Config {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", f.kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// anonConfig trusts the CA but presents no credentials.
func (f *fixture) anonConfig() *rest.Config {
	return &rest.Config{Host: f.srv.URL, TLSClientConfig: rest.TLSClientConfig{CAData: f.ca.CertPEM}}
}

func (f *fixture) tokenConfig(token string) *rest.Config {
	cfg := f.anonConfig()
	cfg.BearerToken = token
	return cfg
}

func do(t *testing.T, cfg *rest.Config, method, path string) (int, string) {
	t.Helper()
	code, body, err := tryDo(cfg, method, path)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return code, body
}

// tryDo sends one request through client-go's transport, the one kubectl
// builds from a kubeconfig.
func tryDo(cfg *rest.Config, method, path string) (int, string, error) {
	rt, err := rest.TransportFor(cfg)
	if err != nil {
		return 0, "", err
	}
	req, err := http.NewRequest(method, cfg.Host+path, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := (&http.Client{Transport: rt}).Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

func decodeWhoami(t *testing.T, body string) whoami {
	t.Helper()
	var w whoami
	if err := json.Unmarshal([]byte(body), &w); err != nil {
		t.Fatalf("decode %q: %v", body, err)
	}
	return w
}

func expectUnauthorized(t *testing.T, code int, body string) {
	t.Helper()
	if code != http.StatusUnauthorized || body != unauthorizedBody {
		t.Fatalf("got %d %q, want 401 %q", code, body, unauthorizedBody)
	}
}

func TestAdminKubeconfigCertificate(t *testing.T) {
	f := newFixture(t, tls.VerifyClientCertIfGiven)
	code, body := do(t, f.adminConfig(t), http.MethodDelete, "/api/v1/namespaces/kube-system/pods/x")
	if code != http.StatusOK {
		t.Fatalf("admin got %d %s", code, body)
	}
	w := decodeWhoami(t, body)
	if w.Name != "admin" || !slices.Equal(w.Groups, []string{auth.GroupMasters, auth.GroupAuthenticated}) {
		t.Fatalf("admin identity = %+v", w)
	}
}

func TestNoCredentials(t *testing.T) {
	f := newFixture(t, tls.VerifyClientCertIfGiven)
	code, body := do(t, f.anonConfig(), http.MethodGet, "/api/v1/namespaces/default/pods")
	expectUnauthorized(t, code, body)

	// The same through client-go's typed client: it must recognise the body.
	cs, err := kubernetes.NewForConfig(f.anonConfig())
	if err != nil {
		t.Fatal(err)
	}
	_, err = cs.CoreV1().Pods("default").List(context.Background(), metav1.ListOptions{})
	if !apierrors.IsUnauthorized(err) {
		t.Fatalf("client-go error = %v, want Unauthorized", err)
	}
}

func TestPublicPathsAnonymous(t *testing.T) {
	f := newFixture(t, tls.VerifyClientCertIfGiven)
	for _, p := range []string{"/healthz", "/livez", "/readyz", "/version"} {
		code, body := do(t, f.anonConfig(), http.MethodGet, p)
		if code != http.StatusOK {
			t.Fatalf("%s: %d %s", p, code, body)
		}
		if w := decodeWhoami(t, body); w.Name != auth.UserAnonymous || !slices.Equal(w.Groups, []string{auth.GroupUnauthenticated}) {
			t.Fatalf("%s: identity %+v", p, w)
		}
	}
	// Not public upstream either.
	code, body := do(t, f.anonConfig(), http.MethodGet, "/readyz/etcd")
	expectUnauthorized(t, code, body)
	// A bad credential is refused even where anonymous access is allowed.
	code, body = do(t, f.tokenConfig("nope"), http.MethodGet, "/healthz")
	expectUnauthorized(t, code, body)
}

// foreignClient issues a client cert for admin/system:masters from a CA the
// server does not trust.
func foreignClient(t *testing.T, caName string) (certPEM, keyPEM []byte) {
	t.Helper()
	dir := t.TempDir()
	other, err := pki.LoadOrCreateCA(dir, caName)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err = other.LoadOrCreateClient(dir, "admin", "admin", []string{auth.GroupMasters})
	if err != nil {
		t.Fatal(err)
	}
	return certPEM, keyPEM
}

// kube-apiserver listens with tls.RequestClientCert and leaves verification
// to its x509 authenticator, which is why a certificate from another CA gets
// a 401 there. The same holds here: with RequestClientCert only the
// authenticator's own chain check stops a forged admin certificate.
func TestCertificateFromOtherCA(t *testing.T) {
	// Same CA name as the real one, so nothing but the signature differs.
	certPEM, keyPEM := foreignClient(t, "wasmkube-ca")

	f := newFixture(t, tls.RequestClientCert)
	cfg := f.anonConfig()
	cfg.CertData, cfg.KeyData = certPEM, keyPEM
	code, body := do(t, cfg, http.MethodGet, "/api/v1/namespaces/default/pods")
	expectUnauthorized(t, code, body)
	// The genuine admin certificate still works on that listener.
	if code, body := do(t, f.adminConfig(t), http.MethodGet, "/api/v1/namespaces/default/pods"); code != http.StatusOK {
		t.Fatalf("admin on RequestClientCert listener: %d %s", code, body)
	}

	// With VerifyClientCertIfGiven the TLS handshake already refuses it.
	// client-go always presents its certificate, so the request fails
	// before HTTP instead of getting a 401.
	g := newFixture(t, tls.VerifyClientCertIfGiven)
	cfg = g.anonConfig()
	cfg.CertData, cfg.KeyData = certPEM, keyPEM
	if code, body, err := tryDo(cfg, http.MethodGet, "/api/v1/namespaces/default/pods"); err == nil {
		t.Fatalf("foreign certificate accepted by VerifyClientCertIfGiven listener: %d %s", code, body)
	}
}

func TestX509RejectsServerOnlyCertificate(t *testing.T) {
	f := newFixture(t, tls.RequestClientCert)
	// A serving certificate from the right CA lacks the client-auth usage.
	certFile, keyFile, err := f.ca.LoadOrCreateServing(t.TempDir(), "not-a-client", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := f.anonConfig()
	cfg.CertFile, cfg.KeyFile = certFile, keyFile
	code, body := do(t, cfg, http.MethodGet, "/api/v1/namespaces/default/pods")
	expectUnauthorized(t, code, body)
}

func TestBearerTokens(t *testing.T) {
	f := newFixture(t, tls.VerifyClientCertIfGiven)
	code, body := do(t, f.tokenConfig("bob-token"), http.MethodGet, "/api/v1/namespaces/default/pods")
	if code != http.StatusOK {
		t.Fatalf("bob got %d %s", code, body)
	}
	if w := decodeWhoami(t, body); w.Name != "bob" || !slices.Equal(w.Groups, []string{"dev", "qa", auth.GroupAuthenticated}) {
		t.Fatalf("bob identity = %+v", w)
	}
	code, body = do(t, f.tokenConfig("unknown-token"), http.MethodGet, "/api/v1/namespaces/default/pods")
	expectUnauthorized(t, code, body)
}

func TestForbiddenMessages(t *testing.T) {
	f := newFixture(t, tls.VerifyClientCertIfGiven)
	code, body := do(t, f.tokenConfig("carol-token"), http.MethodGet, "/api/v1/namespaces/default/pods")
	want := `{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",` +
		`"message":"pods is forbidden: User \"carol\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\"",` +
		`"reason":"Forbidden","details":{"kind":"pods"},"code":403}` + "\n"
	if code != http.StatusForbidden || body != want {
		t.Fatalf("got %d %s\nwant 403 %s", code, body, want)
	}

	code, body = do(t, f.tokenConfig("bob-token"), http.MethodDelete, "/api/v1/namespaces/default/pods/web")
	want = `{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",` +
		`"message":"pods \"web\" is forbidden: User \"bob\" cannot delete resource \"pods\" in API group \"\" in the namespace \"default\"",` +
		`"reason":"Forbidden","details":{"name":"web","kind":"pods"},"code":403}` + "\n"
	if code != http.StatusForbidden || body != want {
		t.Fatalf("got %d %s\nwant 403 %s", code, body, want)
	}

	// client-go must surface the same message and classify it as Forbidden.
	cs, err := kubernetes.NewForConfig(f.tokenConfig("bob-token"))
	if err != nil {
		t.Fatal(err)
	}
	err = cs.CoreV1().Pods("default").Delete(context.Background(), "web", metav1.DeleteOptions{})
	wantMsg := `pods "web" is forbidden: User "bob" cannot delete resource "pods" in API group "" in the namespace "default"`
	if !apierrors.IsForbidden(err) || err.Error() != wantMsg {
		t.Fatalf("client-go error = %v, want Forbidden %q", err, wantMsg)
	}
}

func TestForbiddenMessageForms(t *testing.T) {
	bob := &auth.User{Name: "bob"}
	cases := []struct {
		a      auth.Attributes
		reason string
		want   string
	}{
		{auth.Attributes{User: bob, Verb: "list", Resource: "nodes", ResourceRequest: true}, "",
			`nodes is forbidden: User "bob" cannot list resource "nodes" in API group "" at the cluster scope`},
		{auth.Attributes{User: bob, Verb: "get", APIGroup: "apps", Resource: "deployments", Subresource: "scale", Name: "web", Namespace: "prod", ResourceRequest: true}, "",
			`deployments.apps "web" is forbidden: User "bob" cannot get resource "deployments/scale" in API group "apps" in the namespace "prod"`},
		{auth.Attributes{User: bob, Verb: "get", Path: "/metrics<x>"}, "no rule",
			`forbidden: User "bob" cannot get path "/metrics&lt;x&gt;": no rule`},
	}
	for _, c := range cases {
		if got := auth.Forbidden(c.a, c.reason).Error(); got != c.want {
			t.Errorf("got  %s\nwant %s", got, c.want)
		}
	}
}

func TestPoolMustBeSet(t *testing.T) {
	// With no pool, x509 would consult the system roots; that must fail closed.
	f := newFixture(t, tls.VerifyClientCertIfGiven)
	cfg := f.adminConfig(t)
	rt, err := rest.TransportFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var captured *http.Request
	probe := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { captured = r }))
	probe.TLS = f.srv.TLS
	probe.StartTLS()
	defer probe.Close()
	req, _ := http.NewRequest(http.MethodGet, probe.URL, nil)
	resp, err := (&http.Client{Transport: rt}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if captured == nil || captured.TLS == nil || len(captured.TLS.PeerCertificates) == 0 {
		t.Fatal("probe saw no client certificate")
	}
	if _, ok, err := auth.NewX509(nil).Authenticate(captured); ok || err == nil {
		t.Fatalf("nil pool: ok=%v err=%v, want refusal", ok, err)
	}
	if u, ok, err := auth.NewX509(f.ca.Pool()).Authenticate(captured); !ok || err != nil || u.Name != "admin" {
		t.Fatalf("CA pool: %+v ok=%v err=%v", u, ok, err)
	}
}
