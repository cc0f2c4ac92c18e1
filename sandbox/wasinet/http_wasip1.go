//go:build wasip1

package wasinet

import (
	"net/http"
	"time"
)

// NewTransport returns an http.Transport with http.DefaultTransport's
// settings (keep-alive, idle pool, timeouts) that dials with DialContext.
// Proxies from the environment are not used: a pod reaches Services
// directly.
func NewTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = nil
	t.DialContext = DialContext
	return t
}

// NewClient returns an http.Client over a new NewTransport; timeout bounds
// each request (zero for none).
func NewClient(timeout time.Duration) *http.Client {
	return &http.Client{Transport: NewTransport(), Timeout: timeout}
}
