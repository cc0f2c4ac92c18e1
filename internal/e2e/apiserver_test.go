package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"
)

// The expected texts below are what upstream kubectl v1.37 prints against a
// real kube-apiserver. Only ages are matched loosely, as [0-9]+s: every
// script here runs in well under a minute, so ages stay in seconds and
// column widths stay fixed.

const podsWideHeader = "NAME          READY   STATUS    RESTARTS   AGE   IP       NODE     NOMINATED NODE   READINESS GATES"

// repoFile is a path in the repository, from this package's directory.
func repoFile(t testing.TB, rel string) string {
	t.Helper()
	_, self, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the test source")
	}
	path := filepath.Join(filepath.Dir(self), "..", "..", rel)
	if _, err := os.Stat(path); err != nil {
		t.Fatal(err)
	}
	return path
}

// writeFile writes a manifest into a temp dir and returns its path.
func writeFile(t testing.TB, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// expectOutput fails unless stdout matches want line by line, where want's
// lines are regular expressions anchored at both ends.
func expectOutput(t *testing.T, what, got string, want ...string) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
	ok := len(lines) == len(want) && strings.HasSuffix(got, "\n")
	for i := 0; ok && i < len(want); i++ {
		ok = regexp.MustCompile("^" + want[i] + "$").MatchString(lines[i])
	}
	if !ok {
		t.Errorf("%s:\n got:\n%s\nwant (regexps):\n%s", what, got, strings.Join(want, "\n"))
	}
}

func expectExact(t *testing.T, what string, got Result, stdout, stderr string, exit int) {
	t.Helper()
	if got.Stdout != stdout || got.Stderr != stderr || got.ExitCode != exit {
		t.Errorf("%s:\n got %s\nwant exit %d\nstdout:\n%s\nstderr:\n%s", what, got, exit, stdout, stderr)
	}
}

func getPod(t *testing.T, s *Server, name string) (*corev1.Pod, string) {
	t.Helper()
	out := s.MustKubectl(t, "get", "pod", name, "-o", "yaml")
	var pod corev1.Pod
	if err := yaml.UnmarshalStrict([]byte(out), &pod); err != nil {
		t.Fatalf("get -o yaml is not a Pod: %v\n%s", err, out)
	}
	return &pod, out
}

// TestPodLifecycle is the seed's script: a namespace, the tomcat Pod applied
// from examples/, listed, watched, round-tripped, labelled, deleted.
func TestPodLifecycle(t *testing.T) {
	s := StartServer(t, ServerOptions{})

	t.Run("create namespace", func(t *testing.T) {
		expectExact(t, "create namespace demo", s.Kubectl(t, "create", "namespace", "demo"), "namespace/demo created\n", "", 0)
		expectOutput(t, "get namespace demo", s.MustKubectl(t, "get", "namespace", "demo"),
			"NAME   STATUS   AGE",
			"demo   Active   [0-9]+s")
	})

	// Default flags: --validate=strict, so kubectl reads /openapi/v3 and
	// asks the server for strict field validation.
	applied := t.Run("apply", func(t *testing.T) {
		r := s.Kubectl(t, "apply", "-f", repoFile(t, "examples/tomcat-pod.yaml"))
		expectExact(t, "apply -f examples/tomcat-pod.yaml", r, "pod/tomcat-test created\n", "", 0)
	})
	if !applied {
		t.Fatal("the remaining steps need Pod tomcat-test, which apply did not create")
	}

	t.Run("get wide", func(t *testing.T) {
		expectOutput(t, "get pods -o wide -l app=tomcat", s.MustKubectl(t, "get", "pods", "-o", "wide", "-l", "app=tomcat"),
			regexp.QuoteMeta(podsWideHeader),
			"tomcat-test   0/1     Pending   0          [0-9]+s +<none>   <none>   <none>           <none>")
	})

	t.Run("yaml round trip", func(t *testing.T) {
		before, out := getPod(t, s, "tomcat-test")
		if before.Labels["app"] != "tomcat" || len(before.Spec.Containers) != 1 ||
			before.Spec.Containers[0].Name != "tomcat-java" || before.Spec.Containers[0].Ports[0].ContainerPort != 8080 {
			t.Fatalf("the stored Pod is not the manifest's:\n%s", out)
		}
		r := s.Kubectl(t, "replace", "-f", writeFile(t, "tomcat.yaml", out))
		expectExact(t, "replace -f <get -o yaml>", r, "pod/tomcat-test replaced\n", "", 0)
		after, _ := getPod(t, s, "tomcat-test")
		if after.Name != before.Name || after.UID != before.UID ||
			!apiequality.Semantic.DeepEqual(after.Labels, before.Labels) ||
			!apiequality.Semantic.DeepEqual(after.Spec, before.Spec) {
			t.Errorf("replace changed the object:\nbefore %+v\nafter  %+v", before, after)
		}
	})

	t.Run("watch sees another client's update", func(t *testing.T) {
		w := s.StartKubectl(t, 20*time.Second, "get", "pods", "-w")
		rows := func(n int) func(string) bool {
			return func(out string) bool { return strings.Count(out, "\ntomcat-test ") >= n }
		}
		w.WaitFor(t, 10*time.Second, "initial row", rows(1))
		expectExact(t, "label (while watching)", s.Kubectl(t, "label", "pod", "tomcat-test", "watched=yes"), "pod/tomcat-test labeled\n", "", 0)
		w.WaitFor(t, 10*time.Second, "second row after the label", rows(2))
		out, errOut := w.Stop()
		if errOut != "" {
			t.Errorf("get pods -w stderr: %s", errOut)
		}
		expectOutput(t, "get pods -w", out,
			"NAME          READY   STATUS    RESTARTS   AGE",
			"tomcat-test   0/1     Pending   0          [0-9]+s",
			"tomcat-test   0/1     Pending   0          [0-9]+s")
	})

	t.Run("label and annotate", func(t *testing.T) {
		expectExact(t, "label", s.Kubectl(t, "label", "pod", "tomcat-test", "tier=web"), "pod/tomcat-test labeled\n", "", 0)
		expectExact(t, "annotate", s.Kubectl(t, "annotate", "pod", "tomcat-test", "note=hello world"), "pod/tomcat-test annotated\n", "", 0)
		expectOutput(t, "get pods --show-labels", s.MustKubectl(t, "get", "pods", "--show-labels"),
			"NAME          READY   STATUS    RESTARTS   AGE   LABELS",
			"tomcat-test   0/1     Pending   0          [0-9]+s +app=tomcat,tier=web,watched=yes")
		got := s.MustKubectl(t, "get", "pod", "tomcat-test", "-o", "jsonpath={.metadata.annotations.note}/{.metadata.labels.tier}")
		if got != "hello world/web" {
			t.Errorf("jsonpath annotation/label = %q, want %q", got, "hello world/web")
		}
		expectExact(t, "remove label", s.Kubectl(t, "label", "pod", "tomcat-test", "tier-"), "pod/tomcat-test unlabeled\n", "", 0)
		expectExact(t, "label without --overwrite", s.Kubectl(t, "label", "pod", "tomcat-test", "app=other"), "",
			"error: 'app' already has a value (tomcat), and --overwrite is false\n", 1)
	})

	t.Run("get all", func(t *testing.T) {
		// Only the pods section is pinned: upstream also lists the
		// "kubernetes" Service here, and workload sections appear as
		// controllers create objects.
		out := s.MustKubectl(t, "get", "all")
		section, _, _ := strings.Cut(out, "\n\n")
		expectOutput(t, "get all (pods section)", strings.TrimSuffix(section, "\n")+"\n",
			"NAME              READY   STATUS    RESTARTS   AGE",
			"pod/tomcat-test   0/1     Pending   0          [0-9]+s")
	})

	t.Run("delete", func(t *testing.T) {
		expectExact(t, "delete pod", s.Kubectl(t, "delete", "pod", "tomcat-test"),
			"pod \"tomcat-test\" deleted from default namespace\n", "", 0)
		expectExact(t, "get pods after delete", s.Kubectl(t, "get", "pods"),
			"", "No resources found in default namespace.\n", 0)
		expectExact(t, "get deleted pod", s.Kubectl(t, "get", "pod", "tomcat-test"),
			"", "Error from server (NotFound): pods \"tomcat-test\" not found\n", 1)
	})
}

// TestAPIResources checks discovery as kubectl renders it: every served
// resource with its short names, group version, scope and kind.
func TestAPIResources(t *testing.T) {
	s := StartServer(t, ServerOptions{})
	out := s.MustKubectl(t, "api-resources")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if got := strings.Fields(lines[0]); strings.Join(got, " ") != "NAME SHORTNAMES APIVERSION NAMESPACED KIND" {
		t.Fatalf("api-resources header = %q", lines[0])
	}
	// name.group -> "shortnames apiversion namespaced kind", as in the rows.
	rows := map[string]string{}
	for _, line := range lines[1:] {
		f := strings.Fields(line)
		if len(f) == 4 { // no short names
			f = append(f[:1], append([]string{""}, f[1:]...)...)
		}
		if len(f) != 5 {
			t.Errorf("api-resources row %q", line)
			continue
		}
		key := f[0]
		if gv := f[2]; strings.Contains(gv, "/") {
			key += "." + strings.Split(gv, "/")[0]
		}
		rows[key] = strings.Join(f[1:], " ")
	}
	want := map[string]string{
		"namespaces":                           "ns v1 false Namespace",
		"pods":                                 "po v1 true Pod",
		"services":                             "svc v1 true Service",
		"endpoints":                            "ep v1 true Endpoints",
		"nodes":                                "no v1 false Node",
		"configmaps":                           "cm v1 true ConfigMap",
		"secrets":                              " v1 true Secret",
		"events":                               "ev v1 true Event",
		"serviceaccounts":                      "sa v1 true ServiceAccount",
		"persistentvolumes":                    "pv v1 false PersistentVolume",
		"persistentvolumeclaims":               "pvc v1 true PersistentVolumeClaim",
		"deployments.apps":                     "deploy apps/v1 true Deployment",
		"replicasets.apps":                     "rs apps/v1 true ReplicaSet",
		"daemonsets.apps":                      "ds apps/v1 true DaemonSet",
		"statefulsets.apps":                    "sts apps/v1 true StatefulSet",
		"controllerrevisions.apps":             " apps/v1 true ControllerRevision",
		"jobs.batch":                           " batch/v1 true Job",
		"cronjobs.batch":                       "cj batch/v1 true CronJob",
		"endpointslices.discovery.k8s.io":      " discovery.k8s.io/v1 true EndpointSlice",
		"leases.coordination.k8s.io":           " coordination.k8s.io/v1 true Lease",
		"horizontalpodautoscalers.autoscaling": "hpa autoscaling/v2 true HorizontalPodAutoscaler",
		"runtimeclasses.node.k8s.io":           " node.k8s.io/v1 false RuntimeClass",
		"networkpolicies.networking.k8s.io":    "netpol networking.k8s.io/v1 true NetworkPolicy",
		"events.events.k8s.io":                 "ev events.k8s.io/v1 true Event",
	}
	for name, w := range want {
		if got, ok := rows[name]; !ok {
			t.Errorf("api-resources does not list %s", name)
		} else if got != w {
			t.Errorf("api-resources %s = %q, want %q", name, got, w)
		}
	}
	if t.Failed() {
		t.Logf("api-resources:\n%s", out)
	}
}

// TestInvalidManifests checks that bad input is refused with upstream's
// messages, through kubectl's default (strict) validation.
func TestInvalidManifests(t *testing.T) {
	s := StartServer(t, ServerOptions{})
	pod := func(meta, container string) string {
		return "apiVersion: v1\nkind: Pod\nmetadata:\n" + meta + "spec:\n  containers:\n  - name: c\n" + container
	}
	noImage := writeFile(t, "no-image.yaml", pod("  name: x\n", ""))
	badName := writeFile(t, "bad-name.yaml", pod("  name: Bad_Name\n", "    image: busybox\n"))
	badLabel := writeFile(t, "bad-label.yaml", pod("  name: x\n  labels:\n    app: \"bad value!\"\n", "    image: busybox\n"))
	unknownField := writeFile(t, "unknown-field.yaml", pod("  name: x\n", "    imagee: busybox\n"))
	cases := []struct {
		name, file, stderr string
	}{
		{"missing image", noImage, `The Pod "x" is invalid: spec.containers[0].image: Required value`},
		{"bad name", badName, `The Pod "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": ` +
			`a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', ` +
			`and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is ` +
			`'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')`},
		{"bad label value", badLabel, `The Pod "x" is invalid: metadata.labels: Invalid value: "bad value!": ` +
			`a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', ` +
			`and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', ` +
			`regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')`},
		{"unknown field", unknownField, `Error from server (BadRequest): error when creating "` + unknownField +
			`": Pod in version "v1" cannot be handled as a Pod: strict decoding error: unknown field "spec.containers[0].imagee"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			expectExact(t, "apply -f "+filepath.Base(c.file), s.Kubectl(t, "apply", "-f", c.file), "", c.stderr+"\n", 1)
		})
	}
	expectExact(t, "get pods after refused applies", s.Kubectl(t, "get", "pods"),
		"", "No resources found in default namespace.\n", 0)
}

// TestCredentialsAndHealth checks the plain HTTPS surface: requests without
// credentials are refused as upstream refuses them, while the health
// endpoints answer anyone, as load balancers and probes need.
func TestCredentialsAndHealth(t *testing.T) {
	s := StartServer(t, ServerOptions{})
	cfg := rest.AnonymousClientConfig(s.RESTConfig(t)) // trusts the CA, presents nothing
	client, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	client.Timeout = 10 * time.Second
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := client.Get(cfg.Host + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, string(body)
	}
	for _, path := range []string{"/api/v1/namespaces/default/pods", "/api", "/apis/apps/v1/deployments"} {
		code, body := get(path)
		var st metav1.Status
		if code != http.StatusUnauthorized || json.Unmarshal([]byte(body), &st) != nil ||
			st.Kind != "Status" || st.Status != metav1.StatusFailure || st.Reason != metav1.StatusReasonUnauthorized ||
			st.Code != http.StatusUnauthorized || st.Message != "Unauthorized" {
			t.Errorf("anonymous GET %s = %d %s, want 401 with an Unauthorized Status", path, code, body)
		}
	}
	for _, path := range []string{"/livez", "/readyz", "/healthz"} {
		if code, body := get(path); code != http.StatusOK || body != "ok" {
			t.Errorf("anonymous GET %s = %d %q, want 200 ok", path, code, body)
		}
	}
}
