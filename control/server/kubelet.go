package server

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/wasmkube/wasmkube/control/registry"
	"github.com/wasmkube/wasmkube/control/resources"
	"github.com/wasmkube/wasmkube/internal/pki"
)

// kubeletClientName is the API server's identity toward node agents, as
// kubeadm names it; the agents authorize it.
const kubeletClientName = "kube-apiserver-kubelet-client"

// connectKubelets gives kubelet the API server's client certificate toward
// node agents, minted from the cluster CA, and a way to read Nodes. The
// agents' serving certificates are self-signed, so they are not verified,
// as kube-apiserver does without --kubelet-certificate-authority.
func (s *Server) connectKubelets(kubelet *resources.Kubelet, stores []*registry.Store) error {
	tlsDir := filepath.Join(s.opts.DataDir, "tls")
	ca, err := pki.LoadOrCreateCA(tlsDir, "wasmkube-ca")
	if err != nil {
		return err
	}
	certPEM, keyPEM, err := ca.LoadOrCreateClient(tlsDir, "kubelet-client", kubeletClientName, nil)
	if err != nil {
		return err
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return fmt.Errorf("server: kubelet client certificate: %w", err)
	}
	kubelet.Transport = &http.Transport{
		Proxy:               nil, // node agents are reached directly
		DialContext:         (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout: 10 * time.Second,
		TLSClientConfig: &tls.Config{
			Certificates:       []tls.Certificate{cert},
			InsecureSkipVerify: true, //nolint:gosec // agents serve self-signed certificates, as kubelets do by default
			MinVersion:         tls.VersionTLS12,
		},
		MaxIdleConnsPerHost: 25,
		IdleConnTimeout:     90 * time.Second,
	}
	var nodes *registry.Store
	for _, st := range stores {
		if st.Strategy.Kind.Group == "" && st.Strategy.Resource == "nodes" {
			nodes = st
		}
	}
	if nodes == nil {
		return fmt.Errorf("server: no nodes store")
	}
	kubelet.Node = func(ctx context.Context, name string) (*corev1.Node, error) {
		obj, err := nodes.Get(ctx, "", name)
		if err != nil {
			return nil, err
		}
		return obj.(*corev1.Node), nil
	}
	return nil
}
