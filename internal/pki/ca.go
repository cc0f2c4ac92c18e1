package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"path/filepath"
	"time"

	"github.com/wasmkube/wasmkube/internal/atomicfile"
)

const (
	caValidity = 10 * 365 * 24 * time.Hour
	// backdate tolerates clocks that run slightly behind the issuer's, e.g.
	// a node whose NTP has not settled yet right after boot.
	backdate = time.Hour
)

// CA is a certificate authority able to sign serving and client certificates.
type CA struct {
	Cert    *x509.Certificate
	Key     crypto.Signer
	CertPEM []byte
}

// LoadOrCreateCA loads dir/ca.crt and dir/ca.key, or creates them (ECDSA
// P-256, valid ten years, CommonName commonName) when neither exists.
//
// If only one of the two files exists, or they do not belong together, it
// returns an error instead of creating a new CA: a new CA would silently
// invalidate every kubeconfig and node certificate issued so far.
func LoadOrCreateCA(dir, commonName string) (*CA, error) {
	certPath := filepath.Join(dir, "ca.crt")
	keyPath := filepath.Join(dir, "ca.key")
	certExists, err := exists(certPath)
	if err != nil {
		return nil, err
	}
	keyExists, err := exists(keyPath)
	if err != nil {
		return nil, err
	}
	switch {
	case certExists && keyExists:
		return loadCA(certPath, keyPath)
	case certExists != keyExists:
		return nil, fmt.Errorf("incomplete CA in %s: need both ca.crt and ca.key, found only one", dir)
	}
	return createCA(certPath, keyPath, commonName)
}

func loadCA(certPath, keyPath string) (*CA, error) {
	cert, certPEM, key, _, err := readPair(certPath, keyPath)
	if err != nil {
		return nil, err
	}
	if !cert.IsCA || cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, fmt.Errorf("%s is not a CA certificate", certPath)
	}
	return &CA{Cert: cert, Key: key, CertPEM: certPEM}, nil
}

func createCA(certPath, keyPath, commonName string) (*CA, error) {
	if commonName == "" {
		return nil, fmt.Errorf("create CA %s: empty common name", certPath)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("create CA %s: generate key: %w", certPath, err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, fmt.Errorf("create CA %s: %w", certPath, err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		// The CA only ever signs leaves directly; forbidding intermediates
		// means a stolen leaf key can never mint further certificates.
		MaxPathLen:     0,
		MaxPathLenZero: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("create CA %s: sign: %w", certPath, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("create CA %s: parse: %w", certPath, err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return nil, fmt.Errorf("create CA %s: %w", keyPath, err)
	}
	certPEM := encodeCert(der)
	// Key first: a crash between the two writes leaves "key without cert",
	// which LoadOrCreateCA reports rather than papering over.
	if err := atomicfile.Write(keyPath, keyPEM, keyMode); err != nil {
		return nil, err
	}
	if err := atomicfile.Write(certPath, certPEM, certMode); err != nil {
		return nil, err
	}
	return &CA{Cert: cert, Key: key, CertPEM: certPEM}, nil
}

// newSerial returns a random 128-bit serial; RFC 5280 asks for unique
// serials per CA, and randomness gives that without keeping a counter file.
func newSerial() (*big.Int, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("generate serial: %w", err)
	}
	return serial, nil
}

// Pool returns a pool holding only this CA, for verifying peers.
func (ca *CA) Pool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	return pool
}
