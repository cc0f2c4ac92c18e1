package server

import (
	"net"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestServiceAllocation(t *testing.T) {
	s, cs := startServer(t)
	ctx := testContext(t)
	svcs := cs.CoreV1().Services("default")
	_, serviceRange, _ := net.ParseCIDR("10.96.0.0/12")

	kube, err := svcs.Get(ctx, "kubernetes", metav1.GetOptions{})
	if err != nil || kube.Spec.ClusterIP != "10.96.0.1" {
		t.Fatalf("kubernetes service: %v, clusterIP %q", err, kube.Spec.ClusterIP)
	}
	if got := s.DNSServiceIP().String(); got != "10.96.0.10" {
		t.Fatalf("DNS service IP = %s, want 10.96.0.10", got)
	}

	mk := func(name string, spec corev1.ServiceSpec) (*corev1.Service, error) {
		if len(spec.Ports) == 0 {
			spec.Ports = []corev1.ServicePort{{Port: 80}}
		}
		return svcs.Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: spec}, metav1.CreateOptions{})
	}
	seen := map[string]bool{}
	for i := range 20 {
		svc, err := mk("dyn"+string(rune('a'+i)), corev1.ServiceSpec{})
		if err != nil {
			t.Fatal(err)
		}
		ip := svc.Spec.ClusterIP
		if !serviceRange.Contains(net.ParseIP(ip)) || ip == "10.96.0.1" || ip == "10.96.0.10" || seen[ip] {
			t.Fatalf("dynamic cluster IP %s: outside the range, reserved, or handed out twice", ip)
		}
		seen[ip] = true
		if len(svc.Spec.ClusterIPs) != 1 || svc.Spec.ClusterIPs[0] != ip {
			t.Errorf("clusterIPs = %v, want [%s]", svc.Spec.ClusterIPs, ip)
		}
	}

	if _, err := mk("fixed", corev1.ServiceSpec{ClusterIP: "10.96.0.50"}); err != nil {
		t.Fatal(err)
	}
	_, err = mk("clash", corev1.ServiceSpec{ClusterIP: "10.96.0.50"})
	want := `Service "clash" is invalid: spec.clusterIPs: Invalid value: ["10.96.0.50"]: failed to allocate IP 10.96.0.50: provided IP is already allocated`
	if !apierrors.IsInvalid(err) || err.Error() != want {
		t.Fatalf("requested IP in use:\n got %v\nwant %s", err, want)
	}
	if _, err := mk("outside", corev1.ServiceSpec{ClusterIP: "192.168.0.5"}); !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "not in the valid range") {
		t.Fatalf("IP outside the range: %v", err)
	}
	if err := svcs.Delete(ctx, "fixed", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := mk("reuse", corev1.ServiceSpec{ClusterIP: "10.96.0.50"}); err != nil {
		t.Fatalf("an address freed by delete is not reusable: %v", err)
	}

	np, err := mk("nodeport", corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, Ports: []corev1.ServicePort{{Name: "a", Port: 80, NodePort: 30007}, {Name: "b", Port: 81}}})
	if err != nil {
		t.Fatal(err)
	}
	if np.Spec.Ports[0].NodePort != 30007 || np.Spec.Ports[1].NodePort < 30000 || np.Spec.Ports[1].NodePort > 32767 {
		t.Fatalf("node ports = %d, %d", np.Spec.Ports[0].NodePort, np.Spec.Ports[1].NodePort)
	}
	_, err = mk("np-clash", corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, Ports: []corev1.ServicePort{{Port: 80, NodePort: 30007}}})
	if want := `Service "np-clash" is invalid: spec.ports[0].nodePort: Invalid value: 30007: provided port is already allocated`; !apierrors.IsInvalid(err) || err.Error() != want {
		t.Fatalf("node port in use:\n got %v\nwant %s", err, want)
	}
	// Switching back to ClusterIP frees the node ports.
	np.Spec.Type = corev1.ServiceTypeClusterIP
	for i := range np.Spec.Ports {
		np.Spec.Ports[i].NodePort = 0
	}
	if _, err := svcs.Update(ctx, np, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := mk("np-again", corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, Ports: []corev1.ServicePort{{Port: 80, NodePort: 30007}}}); err != nil {
		t.Fatalf("node port freed by an update is not reusable: %v", err)
	}
	headless, err := mk("headless", corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone})
	if err != nil || headless.Spec.ClusterIP != corev1.ClusterIPNone {
		t.Fatalf("headless: %v, clusterIP %q", err, headless.Spec.ClusterIP)
	}
}
