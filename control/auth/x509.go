package auth

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"
)

type x509Authenticator struct {
	pool     *x509.CertPool
	verified *verifiedCache
}

// NewX509 authenticates requests by a TLS client certificate that chains to
// pool and allows client authentication. The user name is the subject's
// CommonName and the groups its Organization values, as in kube-apiserver.
//
// The chain is verified here even though the TLS server is expected to run
// with tls.VerifyClientCertIfGiven: a listener configured with a weaker
// ClientAuth mode (or a different pool) must not turn into an authentication
// bypass, so this authenticator does not rely on VerifiedChains.
func NewX509(pool *x509.CertPool) Authenticator {
	return &x509Authenticator{pool: pool, verified: newVerifiedCache(verifiedCacheSize)}
}

func (a *x509Authenticator) Authenticate(r *http.Request) (*User, bool, error) {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return nil, false, nil
	}
	leaf := r.TLS.PeerCertificates[0]
	if u, ok := a.verified.get(r.TLS.PeerCertificates, time.Now()); ok {
		return u.clone(), true, nil
	}
	opts := x509.VerifyOptions{
		Roots:         a.pool,
		Intermediates: x509.NewCertPool(),
		CurrentTime:   time.Now(),
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	for _, c := range r.TLS.PeerCertificates[1:] {
		opts.Intermediates.AddCert(c)
	}
	if a.pool == nil {
		// x509 would fall back to the system roots; a client certificate
		// from a public CA must never name a cluster user.
		return nil, false, fmt.Errorf("verify client certificate %q: no client CA configured", leaf.Subject.CommonName)
	}
	if _, err := leaf.Verify(opts); err != nil {
		return nil, false, fmt.Errorf("verify client certificate %q: %w", leaf.Subject.CommonName, err)
	}
	// Upstream treats a valid certificate without a CommonName as "not my
	// kind of credential" rather than an error; keep that.
	if leaf.Subject.CommonName == "" {
		return nil, false, nil
	}
	u := &User{
		Name:   leaf.Subject.CommonName,
		Groups: slices.Clone(leaf.Subject.Organization),
	}
	a.verified.put(r.TLS.PeerCertificates, u)
	return u.clone(), true, nil
}

// Union tries each authenticator in order and returns the first success. If
// none succeeds, the errors of those that rejected the request are joined,
// so a bad credential is reported even when another authenticator found no
// credentials of its kind.
func Union(authns ...Authenticator) Authenticator {
	authns = slices.Clone(authns)
	return AuthenticatorFunc(func(r *http.Request) (*User, bool, error) {
		var errs []error
		for _, a := range authns {
			u, ok, err := a.Authenticate(r)
			if ok && u != nil {
				return u, true, nil
			}
			if err != nil {
				errs = append(errs, err)
			}
		}
		if len(errs) > 0 {
			return nil, false, errors.Join(errs...)
		}
		return nil, false, nil
	})
}
