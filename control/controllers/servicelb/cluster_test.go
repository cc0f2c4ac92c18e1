package servicelb

import (
	"context"
	"os/exec"
	"regexp"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/wasmkube/wasmkube/control/controllers/framework"
	"github.com/wasmkube/wasmkube/internal/testcluster"
)

// TestKubectlShowsExternalIP runs the controller against the real API
// server and checks what a user sees: `kubectl get svc` lists the address
// under EXTERNAL-IP.
func TestKubectlShowsExternalIP(t *testing.T) {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Fatalf("kubectl is needed to check its output (make deps installs it): %v", err)
	}
	s, cs := testcluster.Start(t)
	testcluster.RunControllers(t, cs, map[string]framework.Starter{"servicelb": Starter(Options{Pool: "192.0.2.10-192.0.2.20"})})
	ctx := context.Background()
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, LoadBalancerIP: "192.0.2.15",
			Ports: []corev1.ServicePort{{Port: 80, Protocol: corev1.ProtocolTCP}}},
	}
	if _, err := cs.CoreV1().Services("default").Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitIngress(t, cs, "web", "192.0.2.15/VIP ")
	out, err := exec.CommandContext(ctx, kubectl, "--kubeconfig", s.KubeconfigPath(), "get", "svc", "web").CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl get svc: %v\n%s", err, out)
	}
	if !regexp.MustCompile(`(?m)^NAME\s+TYPE\s+CLUSTER-IP\s+EXTERNAL-IP\s+PORT\(S\)\s+AGE\n` +
		`web\s+LoadBalancer\s+10\.\S+\s+192\.0\.2\.15\s+80:3\d{4}/TCP\s+`).Match(out) {
		t.Errorf("kubectl get svc:\n%s", out)
	}
}
