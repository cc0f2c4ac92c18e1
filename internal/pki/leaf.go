package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/wasmkube/wasmkube/internal/atomicfile"
)

const (
	// leafValidity matches what kubeadm gives component certificates.
	leafValidity = 365 * 24 * time.Hour
	// renewBefore is how close to expiry a certificate is re-issued at load
	// time, so a restart in the last month does not hand out a cert that
	// expires under running clients.
	renewBefore = 30 * 24 * time.Hour
)

// leafSpec is what a leaf certificate must contain to be reused.
type leafSpec struct {
	subject  pkix.Name
	dnsNames []string
	ips      []net.IP
	usage    x509.ExtKeyUsage
}

// LoadOrCreateServing loads or creates dir/<name>.crt and dir/<name>.key, a
// serving certificate signed by ca for dnsNames and ips plus localhost,
// 127.0.0.1, ::1 and the machine's hostname. An existing certificate is
// re-issued when it lacks a requested SAN, was not signed by ca, or is
// within 30 days of expiry.
func (ca *CA) LoadOrCreateServing(dir, name string, dnsNames []string, ips []net.IP) (certFile, keyFile string, err error) {
	if name == "" {
		return "", "", errors.New("serving certificate: empty name")
	}
	dns, allIPs := servingSANs(dnsNames, ips)
	spec := leafSpec{
		subject:  pkix.Name{CommonName: name},
		dnsNames: dns,
		ips:      allIPs,
		usage:    x509.ExtKeyUsageServerAuth,
	}
	certFile = filepath.Join(dir, name+".crt")
	keyFile = filepath.Join(dir, name+".key")
	if _, _, err := ca.loadOrIssue(certFile, keyFile, spec); err != nil {
		return "", "", err
	}
	return certFile, keyFile, nil
}

// LoadOrCreateClient loads or creates dir/<name>.crt and dir/<name>.key, a
// client certificate with CommonName user and Organization groups, the
// subject kube-apiserver maps to a user name and groups. An existing
// certificate is re-issued when its subject differs, it was not signed by
// ca, or it is within 30 days of expiry.
func (ca *CA) LoadOrCreateClient(dir, name, user string, groups []string) (certPEM, keyPEM []byte, err error) {
	if name == "" || user == "" {
		return nil, nil, fmt.Errorf("client certificate %q: empty name or user", name)
	}
	spec := leafSpec{
		subject: pkix.Name{CommonName: user, Organization: slices.Clone(groups)},
		usage:   x509.ExtKeyUsageClientAuth,
	}
	return ca.loadOrIssue(filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key"), spec)
}

// servingSANs adds the addresses every local client may dial, moves IP
// literals passed as DNS names to the IP list (a DNS SAN "10.0.0.1" would
// not match an IP connection) and removes duplicates.
func servingSANs(dnsNames []string, ips []net.IP) ([]string, []net.IP) {
	var dns []string
	outIPs := []net.IP{net.IPv4(127, 0, 0, 1).To4(), net.IPv6loopback}
	addIP := func(ip net.IP) {
		if v4 := ip.To4(); v4 != nil {
			ip = v4
		}
		if !slices.ContainsFunc(outIPs, ip.Equal) {
			outIPs = append(outIPs, ip)
		}
	}
	addName := func(n string) {
		n = strings.ToLower(strings.TrimSpace(n))
		if n == "" {
			return
		}
		if ip := net.ParseIP(n); ip != nil {
			addIP(ip)
			return
		}
		if !slices.Contains(dns, n) {
			dns = append(dns, n)
		}
	}
	addName("localhost")
	if host, err := os.Hostname(); err == nil {
		addName(host)
	}
	for _, n := range dnsNames {
		addName(n)
	}
	for _, ip := range ips {
		if ip != nil {
			addIP(ip)
		}
	}
	return dns, outIPs
}

// loadOrIssue returns the PEM pair at certPath/keyPath if it still satisfies
// spec, otherwise issues and writes a new one.
func (ca *CA) loadOrIssue(certPath, keyPath string, spec leafSpec) ([]byte, []byte, error) {
	cert, certPEM, _, keyPEM, err := readPair(certPath, keyPath)
	if err == nil && ca.satisfies(cert, spec, time.Now()) {
		return certPEM, keyPEM, nil
	}
	// Any load error (missing, corrupt, mismatched files) is repaired by
	// issuing afresh: unlike the CA, a leaf is cheap to replace.
	certPEM, keyPEM, err = ca.issue(spec)
	if err != nil {
		return nil, nil, fmt.Errorf("issue %s: %w", certPath, err)
	}
	if err := atomicfile.Write(keyPath, keyPEM, keyMode); err != nil {
		return nil, nil, err
	}
	if err := atomicfile.Write(certPath, certPEM, certMode); err != nil {
		return nil, nil, err
	}
	return certPEM, keyPEM, nil
}

// satisfies reports whether cert can be reused for spec at time now.
func (ca *CA) satisfies(cert *x509.Certificate, spec leafSpec, now time.Time) bool {
	opts := x509.VerifyOptions{
		Roots:       ca.Pool(),
		CurrentTime: now,
		KeyUsages:   []x509.ExtKeyUsage{spec.usage},
	}
	if _, err := cert.Verify(opts); err != nil {
		return false
	}
	if cert.NotAfter.Sub(now) < renewBefore && cert.NotAfter.Before(ca.Cert.NotAfter) {
		// Only renew if renewal can actually push NotAfter out; a leaf
		// capped by the CA's own expiry would otherwise be re-issued on
		// every load.
		return false
	}
	if cert.Subject.CommonName != spec.subject.CommonName ||
		!sameSet(cert.Subject.Organization, spec.subject.Organization) {
		return false
	}
	for _, n := range spec.dnsNames {
		if !slices.ContainsFunc(cert.DNSNames, func(have string) bool { return strings.EqualFold(have, n) }) {
			return false
		}
	}
	for _, ip := range spec.ips {
		if !slices.ContainsFunc(cert.IPAddresses, ip.Equal) {
			return false
		}
	}
	return true
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}

// issue creates a fresh key and a certificate for it signed by ca.
func (ca *CA) issue(spec leafSpec) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	notAfter := now.Add(leafValidity)
	// A leaf outliving its CA would fail verification anyway; capping it
	// keeps the dates honest.
	if notAfter.After(ca.Cert.NotAfter) {
		notAfter = ca.Cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      spec.subject,
		NotBefore:    now.Add(-backdate),
		NotAfter:     notAfter,
		// ECDSA keys only sign; KeyEncipherment is meaningful for RSA only.
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{spec.usage},
		BasicConstraintsValid: true,
		DNSNames:              spec.dnsNames,
		IPAddresses:           spec.ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return nil, nil, fmt.Errorf("sign: %w", err)
	}
	keyPEM, err = encodeKey(key)
	if err != nil {
		return nil, nil, err
	}
	return encodeCert(der), keyPEM, nil
}
