package pki

import (
	"errors"
	"fmt"

	"github.com/wasmkube/wasmkube/internal/atomicfile"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Names used inside every kubeconfig this package writes. A fixed cluster
// and context name lets users merge it into ~/.kube/config predictably.
const (
	kubeconfigCluster = "wasmkube"
	kubeconfigContext = "wasmkube"
)

// WriteKubeconfig writes a kubeconfig for serverURL with cluster "wasmkube",
// an entry for user and context "wasmkube" (the current one). The CA and the
// client certificate and key are embedded, so the file works when copied to
// another machine. It is written with mode 0600 via a temporary file and a
// rename, so kubectl never reads a partial file while the server rewrites it.
func WriteKubeconfig(path, serverURL string, caPEM, certPEM, keyPEM []byte, user string) error {
	if serverURL == "" || user == "" {
		return fmt.Errorf("write kubeconfig %s: %w", path, errors.New("server URL and user are required"))
	}
	cfg := clientcmdapi.NewConfig()
	cluster := clientcmdapi.NewCluster()
	cluster.Server = serverURL
	cluster.CertificateAuthorityData = caPEM
	cfg.Clusters[kubeconfigCluster] = cluster

	auth := clientcmdapi.NewAuthInfo()
	auth.ClientCertificateData = certPEM
	auth.ClientKeyData = keyPEM
	cfg.AuthInfos[user] = auth

	ctx := clientcmdapi.NewContext()
	ctx.Cluster = kubeconfigCluster
	ctx.AuthInfo = user
	cfg.Contexts[kubeconfigContext] = ctx
	cfg.CurrentContext = kubeconfigContext

	data, err := clientcmd.Write(*cfg)
	if err != nil {
		return fmt.Errorf("write kubeconfig %s: %w", path, err)
	}
	return atomicfile.Write(path, data, keyMode)
}
