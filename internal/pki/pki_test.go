package pki

import (
	"bytes"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
)

func mustCA(t *testing.T, dir string) *CA {
	t.Helper()
	ca, err := LoadOrCreateCA(dir, "wasmkube-ca")
	if err != nil {
		t.Fatalf("LoadOrCreateCA: %v", err)
	}
	return ca
}

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	c, err := parseCertPEM(data)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestCACreatedThenReused(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	ca1 := mustCA(t, dir)
	if !ca1.Cert.IsCA || ca1.Cert.Subject.CommonName != "wasmkube-ca" {
		t.Fatalf("unexpected CA subject %v IsCA=%v", ca1.Cert.Subject, ca1.Cert.IsCA)
	}
	if got := ca1.Cert.PublicKeyAlgorithm; got != x509.ECDSA {
		t.Fatalf("CA key algorithm = %v, want ECDSA", got)
	}
	if life := ca1.Cert.NotAfter.Sub(ca1.Cert.NotBefore); life < caValidity {
		t.Fatalf("CA lifetime %v shorter than %v", life, caValidity)
	}
	if m := mode(t, filepath.Join(dir, "ca.key")); m != 0o600 {
		t.Fatalf("ca.key mode = %o, want 600", m)
	}
	if m := mode(t, dir); m != 0o700 {
		t.Fatalf("dir mode = %o, want 700", m)
	}
	ca2 := mustCA(t, dir)
	if !bytes.Equal(ca1.CertPEM, ca2.CertPEM) {
		t.Fatal("second LoadOrCreateCA produced a different CA")
	}
}

func TestCAHalfPresentIsAnError(t *testing.T) {
	dir := t.TempDir()
	mustCA(t, dir)
	if err := os.Remove(filepath.Join(dir, "ca.key")); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateCA(dir, "wasmkube-ca"); err == nil {
		t.Fatal("expected an error for ca.crt without ca.key")
	}
}

func TestServingReuseAndRegeneration(t *testing.T) {
	dir := t.TempDir()
	ca := mustCA(t, dir)
	certFile, keyFile, err := ca.LoadOrCreateServing(dir, "apiserver", []string{"api.example", "10.1.2.3"}, []net.IP{net.ParseIP("192.168.7.7")})
	if err != nil {
		t.Fatal(err)
	}
	first, _ := os.ReadFile(certFile)
	if m := mode(t, keyFile); m != 0o600 {
		t.Fatalf("key mode = %o, want 600", m)
	}
	c := readCert(t, certFile)
	for _, n := range []string{"localhost", "api.example"} {
		if !slices.Contains(c.DNSNames, n) {
			t.Errorf("DNS SANs %v lack %q", c.DNSNames, n)
		}
	}
	if host, err := os.Hostname(); err == nil && host != "" {
		if err := c.VerifyHostname(host); err != nil {
			t.Errorf("hostname %q not covered: %v", host, err)
		}
	}
	for _, ip := range []string{"127.0.0.1", "::1", "10.1.2.3", "192.168.7.7"} {
		if err := c.VerifyHostname(ip); err != nil {
			t.Errorf("IP %s not covered: %v", ip, err)
		}
	}
	if _, err := c.Verify(x509.VerifyOptions{Roots: ca.Pool(), DNSName: "api.example"}); err != nil {
		t.Fatalf("serving cert does not verify against the CA: %v", err)
	}

	// Same request, and a subset of it: reuse.
	for _, names := range [][]string{{"api.example", "10.1.2.3"}, {"API.example"}} {
		if _, _, err := ca.LoadOrCreateServing(dir, "apiserver", names, nil); err != nil {
			t.Fatal(err)
		}
		again, _ := os.ReadFile(certFile)
		if !bytes.Equal(first, again) {
			t.Fatalf("certificate re-issued for names %v already covered", names)
		}
	}

	// A SAN the existing cert lacks: re-issue.
	if _, _, err := ca.LoadOrCreateServing(dir, "apiserver", []string{"new.example"}, nil); err != nil {
		t.Fatal(err)
	}
	regenerated, _ := os.ReadFile(certFile)
	if bytes.Equal(first, regenerated) {
		t.Fatal("certificate not re-issued for a missing SAN")
	}
	if err := readCert(t, certFile).VerifyHostname("new.example"); err != nil {
		t.Fatal(err)
	}
}

func TestServingReissuedForNewCA(t *testing.T) {
	dir := t.TempDir()
	old := mustCA(t, filepath.Join(dir, "old"))
	certFile, _, err := old.LoadOrCreateServing(dir, "apiserver", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ca := mustCA(t, filepath.Join(dir, "new"))
	if _, _, err := ca.LoadOrCreateServing(dir, "apiserver", nil, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := readCert(t, certFile).Verify(x509.VerifyOptions{Roots: ca.Pool()}); err != nil {
		t.Fatalf("certificate from the old CA was kept: %v", err)
	}
}

func TestClientReuseAndSubjectChange(t *testing.T) {
	dir := t.TempDir()
	ca := mustCA(t, dir)
	cert1, key1, err := ca.LoadOrCreateClient(dir, "admin", "admin", []string{"system:masters"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := parseCertPEM(cert1)
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject.CommonName != "admin" || !slices.Equal(c.Subject.Organization, []string{"system:masters"}) {
		t.Fatalf("subject = %v", c.Subject)
	}
	if _, err := c.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatalf("client cert does not verify for client auth: %v", err)
	}
	cert2, key2, err := ca.LoadOrCreateClient(dir, "admin", "admin", []string{"system:masters"})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(cert1, cert2) || !bytes.Equal(key1, key2) {
		t.Fatal("client cert not reused")
	}
	cert3, _, err := ca.LoadOrCreateClient(dir, "admin", "admin", []string{"system:masters", "ops"})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(cert1, cert3) {
		t.Fatal("client cert not re-issued after groups changed")
	}
}

func TestWriteKubeconfig(t *testing.T) {
	dir := t.TempDir()
	ca := mustCA(t, dir)
	certPEM, keyPEM, err := ca.LoadOrCreateClient(dir, "admin", "admin", []string{"system:masters"})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "admin.kubeconfig")
	if err := WriteKubeconfig(path, "https://127.0.0.1:6443", ca.CertPEM, certPEM, keyPEM, "admin"); err != nil {
		t.Fatal(err)
	}
	if m := mode(t, path); m != 0o600 {
		t.Fatalf("kubeconfig mode = %o, want 600", m)
	}
	cfg, err := clientcmd.LoadFromFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.CurrentContext != "wasmkube" {
		t.Fatalf("current context = %q", cfg.CurrentContext)
	}
	ctx := cfg.Contexts["wasmkube"]
	if ctx == nil || ctx.Cluster != "wasmkube" || ctx.AuthInfo != "admin" {
		t.Fatalf("context = %+v", ctx)
	}
	cl := cfg.Clusters["wasmkube"]
	if cl == nil || cl.Server != "https://127.0.0.1:6443" || !bytes.Equal(cl.CertificateAuthorityData, ca.CertPEM) {
		t.Fatalf("cluster = %+v", cl)
	}
	ai := cfg.AuthInfos["admin"]
	if ai == nil || !bytes.Equal(ai.ClientCertificateData, certPEM) || !bytes.Equal(ai.ClientKeyData, keyPEM) {
		t.Fatal("user credentials not embedded")
	}
	// Rewriting must replace the file in place, leaving no temporaries.
	if err := WriteKubeconfig(path, "https://10.0.0.1:6443", ca.CertPEM, certPEM, keyPEM, "admin"); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if len(e.Name()) > 0 && e.Name()[0] == '.' {
			t.Fatalf("temporary file %s left behind", e.Name())
		}
	}
	cfg, err = clientcmd.LoadFromFile(path)
	if err != nil || cfg.Clusters["wasmkube"].Server != "https://10.0.0.1:6443" {
		t.Fatalf("rewrite not visible: %v", err)
	}
}
