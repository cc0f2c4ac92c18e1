package server

import (
	"context"
	"fmt"
	"log"
	"log/slog"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/wasmkube/wasmkube/control/apiserver"
	"github.com/wasmkube/wasmkube/control/auth"
)

// systemNamespaces exist in every cluster, as upstream's bootstrap
// controller creates them.
var systemNamespaces = []string{metav1.NamespaceDefault, metav1.NamespaceSystem, metav1.NamespacePublic, corev1.NamespaceNodeLease}

// bootstrap creates what a new cluster must have: the system namespaces and
// the API's own `kubernetes` Service at the first address of the service
// range. It is idempotent: a restart finds everything there and changes
// nothing.
func bootstrap(ctx context.Context, api *apiserver.Server, apiServiceIP string, securePort int) error {
	namespaces := api.Store(corev1.SchemeGroupVersion.WithResource("namespaces"))
	for _, name := range systemNamespaces {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
		_, err := namespaces.Create(ctx, "", ns, &metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("server: creating namespace %s: %w", name, err)
		}
	}
	services := api.Store(corev1.SchemeGroupVersion.WithResource("services"))
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "kubernetes", Namespace: metav1.NamespaceDefault,
			Labels: map[string]string{"component": "apiserver", "provider": "kubernetes"}},
		Spec: corev1.ServiceSpec{
			ClusterIP: apiServiceIP,
			Ports: []corev1.ServicePort{{Name: "https", Port: 443, Protocol: corev1.ProtocolTCP,
				TargetPort: intstr.FromInt32(int32(securePort))}},
		},
	}
	// Another server on the same etcd may have created it already; its
	// address is then taken, so look before creating.
	if _, err := services.Get(ctx, metav1.NamespaceDefault, svc.Name); err == nil {
		return nil
	}
	if _, err := services.Create(ctx, metav1.NamespaceDefault, svc, &metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("server: creating the kubernetes service: %w", err)
	}
	return nil
}

// nodePolicy is the authorization for users outside system:masters: node
// agents (group system:nodes) may act on the cluster; everyone else is
// refused until RBAC exists.
type nodePolicy struct{}

func (nodePolicy) Authorize(_ context.Context, a auth.Attributes) (bool, string, error) {
	if a.User != nil && a.User.InGroup(groupNodes) {
		return true, "", nil
	}
	return false, "", nil
}

const groupNodes = "system:nodes"

// slogErrorLog routes net/http's own error log (TLS handshake failures and
// the like) to slog at debug level: they are the clients' problem.
func slogErrorLog() *log.Logger {
	return slog.NewLogLogger(slog.Default().Handler(), slog.LevelDebug)
}
