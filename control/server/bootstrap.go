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
	"github.com/wasmkube/wasmkube/control/registry"
)

// systemNamespaces exist in every cluster, as upstream's bootstrap
// controller creates them.
var systemNamespaces = []string{metav1.NamespaceDefault, metav1.NamespaceSystem, metav1.NamespacePublic, corev1.NamespaceNodeLease}

// bootstrap creates what a new cluster must have: the system namespaces and
// the API's own `kubernetes` Service at the first address of the service
// range, and the cluster DNS's `kube-dns` Service at the tenth. It is
// idempotent: a restart finds everything there and changes nothing.
func bootstrap(ctx context.Context, api *apiserver.Server, apiServiceIP, dnsServiceIP string, securePort int) error {
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
	if err := ensureService(ctx, services, svc); err != nil {
		return err
	}
	return ensureService(ctx, services, kubeDNSService(dnsServiceIP))
}

// kubeDNSService is the Service cluster DNS answers under, named and
// labelled as kubeadm's so that tools looking for it find it. It has no
// selector: every node agent runs its own DNS server and publishes it in
// an EndpointSlice of its own.
func kubeDNSService(clusterIP string) *corev1.Service {
	// Each node answers its own pods: the DNS server is part of the agent,
	// and another node's bridge address may not be routable from here.
	local := corev1.ServiceInternalTrafficPolicyLocal
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "kube-dns", Namespace: metav1.NamespaceSystem,
			Labels: map[string]string{"k8s-app": "kube-dns", "kubernetes.io/name": "CoreDNS"}},
		Spec: corev1.ServiceSpec{
			ClusterIP:             clusterIP,
			InternalTrafficPolicy: &local,
			Ports: []corev1.ServicePort{
				{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP, TargetPort: intstr.FromInt32(53)},
				{Name: "dns-tcp", Port: 53, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(53)},
			},
		},
	}
}

// ensureService creates svc unless a Service of its name exists. Another
// server on the same etcd may have created it already; its address is then
// taken, so look before creating.
func ensureService(ctx context.Context, services *registry.Store, svc *corev1.Service) error {
	if _, err := services.Get(ctx, svc.Namespace, svc.Name); err == nil {
		return nil
	}
	if _, err := services.Create(ctx, svc.Namespace, svc, &metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("server: creating the %s service: %w", svc.Name, err)
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
