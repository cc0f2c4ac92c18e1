package server

import (
	"net"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestKubeDNSServiceBootstrapped(t *testing.T) {
	s, cs := startServer(t)
	ctx := testContext(t)
	svcs := cs.CoreV1().Services(metav1.NamespaceSystem)

	svc, err := svcs.Get(ctx, "kube-dns", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("kube-dns service: %v", err)
	}
	if svc.Spec.ClusterIP != s.DNSServiceIP().String() || svc.Spec.ClusterIP != "10.96.0.10" {
		t.Errorf("clusterIP = %q, want %s", svc.Spec.ClusterIP, s.DNSServiceIP())
	}
	if svc.Labels["k8s-app"] != "kube-dns" || svc.Labels["kubernetes.io/name"] != "CoreDNS" {
		t.Errorf("labels = %v", svc.Labels)
	}
	if svc.Spec.Selector != nil {
		t.Errorf("selector = %v, want none: agents publish the endpoints", svc.Spec.Selector)
	}
	if svc.Spec.Type != corev1.ServiceTypeClusterIP {
		t.Errorf("type = %q", svc.Spec.Type)
	}
	want := []corev1.ServicePort{
		{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP, TargetPort: intstr.FromInt32(53)},
		{Name: "dns-tcp", Port: 53, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(53)},
	}
	if len(svc.Spec.Ports) != len(want) {
		t.Fatalf("ports = %+v", svc.Spec.Ports)
	}
	for i, p := range svc.Spec.Ports {
		if p != want[i] {
			t.Errorf("port %d = %+v, want %+v", i, p, want[i])
		}
	}
	if ip := net.ParseIP(svc.Spec.ClusterIP); ip == nil {
		t.Fatalf("clusterIP %q does not parse", svc.Spec.ClusterIP)
	}

	// Bootstrap runs at every start: it leaves an existing Service alone
	// and recreates a deleted one at the same address.
	port := s.listener.Addr().(*net.TCPAddr).Port
	dnsIP := s.DNSServiceIP().String()
	if err := bootstrap(ctx, s.api, "10.96.0.1", dnsIP, port); err != nil {
		t.Fatalf("bootstrap again: %v", err)
	}
	again, err := svcs.Get(ctx, "kube-dns", metav1.GetOptions{})
	if err != nil || again.ResourceVersion != svc.ResourceVersion {
		t.Fatalf("second bootstrap changed kube-dns: %v, resourceVersion %s -> %s", err, svc.ResourceVersion, again.ResourceVersion)
	}
	if err := svcs.Delete(ctx, "kube-dns", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := bootstrap(ctx, s.api, "10.96.0.1", dnsIP, port); err != nil {
		t.Fatalf("bootstrap after delete: %v", err)
	}
	back, err := svcs.Get(ctx, "kube-dns", metav1.GetOptions{})
	if err != nil || back.Spec.ClusterIP != dnsIP {
		t.Fatalf("kube-dns after re-bootstrap: %v, clusterIP %q", err, back.Spec.ClusterIP)
	}
}
