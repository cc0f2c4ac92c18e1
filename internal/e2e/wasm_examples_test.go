package e2e

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/wasmkube/wasmkube/internal/testimages"
)

// The wasm images of examples/wasm-*.yaml, imported under the names the
// manifests ship, so that only busybox and the peers' URLs are replaced.
const (
	collectorImage  = "wasmkube.example/collector:v1"
	logShipperImage = "wasmkube.example/logshipper:v1"
	codeSyncImage   = "wasmkube.example/codesync:v1"
	localhostImage  = "wasmkube.example/localhost:v1"
)

// wasmExampleImages are the images the wasm examples need, besides
// busyboxImage.
var wasmExampleImages = []string{collectorImage, logShipperImage, codeSyncImage, localhostImage}

// buildWasmExampleImage packs the guest of examples/wasm behind ref.
func buildWasmExampleImage(t *testing.T, ref string) string {
	t.Helper()
	pkg := map[string]string{
		collectorImage:  "examples/wasm/collector",
		logShipperImage: "examples/wasm/logshipper",
		codeSyncImage:   "examples/wasm/codesync",
		localhostImage:  "examples/wasm/localhost",
	}[ref]
	if pkg == "" {
		t.Fatalf("no wasm example image %s", ref)
	}
	return testimages.BuildWasmOCIArchive(t, ref, repoFile(t, pkg))
}

// wasmExampleManifest is exampleManifest with each old text of
// replacements (old, new, old, new, ...) replaced; a text the manifest no
// longer holds fails the test, so that the test and the example stay in
// step.
func wasmExampleManifest(t *testing.T, rel string, replacements ...string) string {
	t.Helper()
	m := exampleManifest(t, rel)
	for i := 0; i+1 < len(replacements); i += 2 {
		if !strings.Contains(m, replacements[i]) {
			t.Fatalf("%s no longer holds %q; update the test", rel, replacements[i])
		}
		m = strings.ReplaceAll(m, replacements[i], replacements[i+1])
	}
	return m
}

// splitManifest cuts a multi-document manifest before the document of
// the Pod named pod: the peers it needs come first, so that the test can
// learn their IPs before the pod is created.
func splitManifest(t *testing.T, manifest, pod string) (peers, rest string) {
	t.Helper()
	docs := strings.Split(manifest, "\n---\n")
	for i, d := range docs {
		if strings.Contains(d, "\nkind: Pod\n") && strings.Contains(d, "\n  name: "+pod+"\n") {
			return strings.Join(docs[:i], "\n---\n"), strings.Join(docs[i:], "\n---\n")
		}
	}
	t.Fatalf("no Pod %s in the manifest", pod)
	return "", ""
}

// podURL is http://<pod IP>:port, standing in for a Service's URL: the
// examples name their peers by Service, and the tests do not depend on
// ClusterIP routing and cluster DNS.
func podURL(pod *corev1.Pod, port int) string {
	return fmt.Sprintf("http://%s:%d", pod.Status.PodIP, port)
}

// testWasmLogCollection runs examples/wasm-log-collection.yaml: lines the
// unchanged busybox business container writes to access.log and
// error.log show in `kubectl logs` of the wasm collector pod, shipped
// there by the wasm sidecar that tails the shared emptyDir. The shipped
// COLLECTOR_URL names the log-collector Service; it is replaced by the
// collector pod's IP.
func testWasmLogCollection(t *testing.T, nt *nodeTest) {
	ns := nt.namespace(t, "wasm-logs")
	peers, _ := splitManifest(t, exampleManifest(t, "examples/wasm-log-collection.yaml"), "shop")
	nt.apply(t, ns, peers)
	collector := nt.waitRunning(t, ns, "log-collector")
	nt.waitHTTP(t, collector, 8080, "/healthz", 30*time.Second, func(string) error { return nil })
	full := wasmExampleManifest(t, "examples/wasm-log-collection.yaml", "http://log-collector:8080", podURL(collector, 8080))
	_, rest := splitManifest(t, full, "shop")
	nt.apply(t, ns, rest)
	nt.waitRunning(t, ns, "shop")

	// Lines of both files, as the business container wrote them.
	logs := nt.waitLogs(t, ns, "shop error.log: ", "log-collector")
	for _, re := range []string{
		`(?m)^shop access\.log: \S+ GET /items/\d+ 200$`,
		`(?m)^shop error\.log: \S+ order \d+ failed: payment timeout$`,
	} {
		if !regexp.MustCompile(re).MatchString(logs) {
			t.Errorf("collector logs match no %s:\n%s", re, logs)
		}
	}
	// The very first line of each file, read back from the business
	// container, reached the collector.
	for _, file := range []string{"access.log", "error.log"} {
		first := strings.TrimSpace(nt.MustKubectl(t, "-n", ns, "exec", "shop", "-c", "app", "--", "head", "-n", "1", "/var/log/shop/"+file))
		if first == "" {
			t.Fatalf("%s of the business container is empty", file)
		}
		nt.waitLogs(t, ns, "shop "+file+": "+first+"\n", "log-collector")
	}
	if out := nt.MustKubectl(t, "-n", ns, "logs", "shop", "-c", "logshipper"); !strings.HasPrefix(out, "logshipper: shipping /var/log/shop/*.log to ") {
		t.Errorf("logshipper logs start %q", out)
	}
}

// testWasmCodeSync runs examples/wasm-code-sync.yaml: the busybox httpd
// of the web pod serves the release its wasm sidecar fetched from
// release-origin, and a new release published there is served within a
// minute. The shipped SOURCE_URL names the release-origin Service; it is
// replaced by the origin pod's IP.
func testWasmCodeSync(t *testing.T, nt *nodeTest) {
	ns := nt.namespace(t, "wasm-codesync")
	peers, _ := splitManifest(t, exampleManifest(t, "examples/wasm-code-sync.yaml"), "web")
	nt.apply(t, ns, peers)
	origin := nt.waitRunning(t, ns, "release-origin")
	full := wasmExampleManifest(t, "examples/wasm-code-sync.yaml", "http://release-origin:80", podURL(origin, 80))
	_, rest := splitManifest(t, full, "web")
	nt.apply(t, ns, rest)
	web := nt.waitRunning(t, ns, "web")
	serves := func(want string) func(string) error {
		return func(body string) error {
			if body != want {
				return fmt.Errorf("body %q, want %q", body, want)
			}
			return nil
		}
	}
	nt.waitHTTP(t, web, 80, "/", time.Minute, serves("<h1>release v1</h1>\n"))
	nt.MustKubectl(t, "-n", ns, "exec", "release-origin", "--", "sh", "-c", `echo "<h1>release v2</h1>" > /srv/www/index.html`)
	nt.waitHTTP(t, web, 80, "/", time.Minute, serves("<h1>release v2</h1>\n"))
	nt.waitLogs(t, ns, "codesync: updated index.html", "web", "-c", "codesync")
}

// testWasmLocalhost runs examples/wasm-localhost.yaml: from the busybox
// container, localhost:8080 is the wasm relay (OCI -> wasm), whose answer
// holds the page it fetched from the busybox httpd at localhost:80
// (wasm -> OCI); the probe container's loop logs the same answer.
func testWasmLocalhost(t *testing.T, nt *nodeTest) {
	ns := nt.namespace(t, "wasm-localhost")
	nt.apply(t, ns, exampleManifest(t, "examples/wasm-localhost.yaml"))
	pod := nt.waitRunning(t, ns, "localhost-demo")
	const fetched = "fetched http://localhost:80/:\nhello from the busybox httpd on port 80\n"
	const want = "wasm container (asked as localhost:8080) " + fetched
	deadline := time.Now().Add(time.Minute)
	for {
		r := nt.Kubectl(t, "-n", ns, "exec", "localhost-demo", "-c", "web", "--", "wget", "-qO-", "http://localhost:8080/")
		if r.ExitCode == 0 && r.Stdout == want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("wget http://localhost:8080/ in the web container: %s\nwant stdout %q", r, want)
		}
		time.Sleep(time.Second)
	}
	nt.waitLogs(t, ns, want, "localhost-demo", "-c", "probe")
	// The relay's port is the pod's too.
	nt.waitHTTP(t, pod, 8080, "/", 30*time.Second, func(body string) error {
		if w := fmt.Sprintf("wasm container (asked as %s:8080) %s", pod.Status.PodIP, fetched); body != w {
			return fmt.Errorf("body %q, want %q", body, w)
		}
		return nil
	})
}
