package e2e

import (
	"os"
	"strings"
	"testing"
)

// exampleManifest is a file of examples/ with its busybox image replaced
// by the one the tests import, since no registry is reachable.
func exampleManifest(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(repoFile(t, rel))
	if err != nil {
		t.Fatal(err)
	}
	const shipped = "image: busybox:1.36"
	if !strings.Contains(string(b), shipped) {
		t.Fatalf("%s no longer uses %q; update the test", rel, shipped)
	}
	return strings.ReplaceAll(string(b), shipped, "image: "+busyboxImage)
}

// testExamplePersistentVolume runs examples/pvc-pod.yaml twice: the second
// pod finds what the first wrote on the claim.
func testExamplePersistentVolume(t *testing.T, nt *nodeTest) {
	ns := nt.namespace(t, "example-pvc")
	manifest := exampleManifest(t, "examples/pvc-pod.yaml")
	nt.apply(t, ns, manifest)
	nt.waitSucceeded(t, ns, "notes-writer")
	first := nt.MustKubectl(t, "-n", ns, "logs", "notes-writer")
	if n := strings.Count(first, "\n"); n != 1 {
		t.Fatalf("first run logged %d visits, want 1:\n%s", n, first)
	}
	nt.MustKubectl(t, "-n", ns, "delete", "pod", "notes-writer")
	nt.apply(t, ns, manifest)
	nt.waitSucceeded(t, ns, "notes-writer")
	second := nt.MustKubectl(t, "-n", ns, "logs", "notes-writer")
	if n := strings.Count(second, "\n"); n != 2 || !strings.HasPrefix(second, first) {
		t.Fatalf("second run logged:\n%s\nwant the first run's visit and a new one", second)
	}
	if r := nt.KubectlStdin(t, manifest, "delete", "-n", ns, "-f", "-"); r.ExitCode != 0 {
		t.Fatalf("kubectl delete -f examples/pvc-pod.yaml: %s", r)
	}
}

// testExampleProbes walks through examples/probes-pod.yaml as its comment
// says: removing the readiness file takes the pod out of its Service's
// endpoints, and touching it puts it back.
func testExampleProbes(t *testing.T, nt *nodeTest) {
	ns := nt.namespace(t, "example-probes")
	nt.apply(t, ns, exampleManifest(t, "examples/probes-pod.yaml"))
	web := map[string]bool{"web": true}
	nt.waitReadiness(t, ns, "web-probed", "web-probed", true, web)
	nt.MustKubectl(t, "-n", ns, "exec", "web-probed", "--", "rm", "/tmp/ready")
	nt.waitReadiness(t, ns, "web-probed", "web-probed", false, map[string]bool{"web": false})
	nt.MustKubectl(t, "-n", ns, "exec", "web-probed", "--", "touch", "/tmp/ready")
	nt.waitReadiness(t, ns, "web-probed", "web-probed", true, web)
}
