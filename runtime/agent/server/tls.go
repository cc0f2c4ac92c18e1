package server

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"

	certutil "k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/keyutil"
)

// Identities the agent serves.
const (
	// KubeletClientUser is the API server's client certificate's common
	// name, as kubeadm names it.
	KubeletClientUser = "kube-apiserver-kubelet-client"
	// MastersGroup is the cluster-admin group.
	MastersGroup = "system:masters"
)

// servingCert loads the agent's self-signed serving certificate from dir,
// making it on first start, as the kubelet keeps kubelet.crt/kubelet.key.
func servingCert(dir, host string, ips []net.IP) (tls.Certificate, error) {
	certPath, keyPath := filepath.Join(dir, "kubelet.crt"), filepath.Join(dir, "kubelet.key")
	ok, err := certutil.CanReadCertAndKey(certPath, keyPath)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("serving certificate: %w", err)
	}
	if !ok {
		certPEM, keyPEM, err := certutil.GenerateSelfSignedCertKey(host, ips, nil)
		if err != nil {
			return tls.Certificate{}, fmt.Errorf("generate serving certificate: %w", err)
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return tls.Certificate{}, fmt.Errorf("serving certificate dir: %w", err)
		}
		if err := certutil.WriteCert(certPath, certPEM); err != nil {
			return tls.Certificate{}, fmt.Errorf("write serving certificate: %w", err)
		}
		if err := keyutil.WriteKey(keyPath, keyPEM); err != nil {
			return tls.Certificate{}, fmt.Errorf("write serving key: %w", err)
		}
	}
	cert, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("load serving certificate: %w", err)
	}
	return cert, nil
}

// user is an authenticated client.
type user struct {
	name   string
	groups []string
}

// authenticate returns the client's identity from its verified
// certificate chain; ok is false without one.
func authenticate(r *http.Request) (user, bool) {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || len(r.TLS.VerifiedChains[0]) == 0 {
		return user{}, false
	}
	leaf := r.TLS.VerifiedChains[0][0]
	if !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageClientAuth) && !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageAny) {
		return user{}, false
	}
	return user{name: leaf.Subject.CommonName, groups: leaf.Subject.Organization}, true
}

func (u user) allowed() bool {
	return u.name == KubeletClientUser || slices.Contains(u.groups, MastersGroup)
}

// guard refuses unauthenticated (401) and unauthorized (403) requests, as
// the kubelet words them.
func guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, ok := authenticate(r)
		if !ok {
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		if !u.allowed() {
			verb := "get"
			if r.Method == http.MethodPost {
				verb = "create"
			}
			http.Error(w, fmt.Sprintf("Forbidden (user=%s, verb=%s, resource=nodes, subresource=proxy)", u.name, verb), http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}
