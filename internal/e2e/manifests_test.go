package e2e

import (
	"regexp"
	"strings"
	"testing"
)

// The manifest scripts: the ways people change objects with kubectl apply,
// patch, diff and dry runs, and what kubectl prints for each, as against
// Kubernetes.

const deploymentV1 = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: nginx:1.25
`

func jsonpath(t *testing.T, s *Server, resource, path string) string {
	t.Helper()
	return s.MustKubectl(t, "get", resource, "-o", "jsonpath="+path)
}

func TestClientSideApplyPatches(t *testing.T) {
	s := StartServer(t, ServerOptions{})
	expectExact(t, "first apply", s.Kubectl(t, "apply", "-f", writeFile(t, "v1.yaml", deploymentV1)),
		"deployment.apps/web created\n", "", 0)
	// A field set by someone else must survive the second apply: it is a
	// three-way patch of what changed in the manifest, not a replace.
	s.MustKubectl(t, "annotate", "deployment", "web", "owner=ops")
	edited := strings.Replace(deploymentV1, "replicas: 2", "replicas: 3", 1)
	r := s.Kubectl(t, "apply", "-f", writeFile(t, "v2.yaml", edited), "-v=6")
	if r.ExitCode != 0 || !strings.Contains(r.Stdout, "deployment.apps/web configured") {
		t.Fatalf("second apply:\n%s", r)
	}
	if !regexp.MustCompile(`verb="PATCH" url="[^"]+/deployments/web\?`).MatchString(r.Stderr) || strings.Contains(r.Stderr, `verb="PUT"`) {
		t.Fatalf("the second apply was not sent as a PATCH:\n%s", r.Stderr)
	}
	if got := jsonpath(t, s, "deploy/web", "{.spec.replicas} {.metadata.annotations.owner}"); got != "3 ops" {
		t.Fatalf("after the second apply: replicas and annotation = %q, want \"3 ops\"", got)
	}
	if got := jsonpath(t, s, "deploy/web", "{.metadata.annotations.kubectl\\.kubernetes\\.io/last-applied-configuration}"); !strings.Contains(got, `"replicas":3`) {
		t.Fatalf("last-applied-configuration not kept: %q", got)
	}
	expectExact(t, "apply unchanged", s.Kubectl(t, "apply", "-f", writeFile(t, "v2.yaml", edited)),
		"deployment.apps/web unchanged\n", "", 0)
}

func TestServerSideApplyConflicts(t *testing.T) {
	s := StartServer(t, ServerOptions{})
	manifest := writeFile(t, "v1.yaml", deploymentV1)
	expectExact(t, "apply --server-side", s.Kubectl(t, "apply", "--server-side", "-f", manifest),
		"deployment.apps/web serverside-applied\n", "", 0)
	other := writeFile(t, "other.yaml", strings.Replace(deploymentV1, "replicas: 2", "replicas: 5", 1))
	r := s.Kubectl(t, "apply", "--server-side", "--field-manager=ops", "-f", other)
	if r.ExitCode == 0 || !strings.Contains(r.Stderr, `Apply failed with 1 conflict: conflict with "kubectl": .spec.replicas`) {
		t.Fatalf("conflicting apply by a second manager:\n%s", r)
	}
	if got := jsonpath(t, s, "deploy/web", "{.spec.replicas}"); got != "2" {
		t.Fatalf("a refused apply changed replicas to %s", got)
	}
	expectExact(t, "apply --force-conflicts", s.Kubectl(t, "apply", "--server-side", "--field-manager=ops", "--force-conflicts", "-f", other),
		"deployment.apps/web serverside-applied\n", "", 0)
	if got := jsonpath(t, s, "deploy/web", "{.spec.replicas}"); got != "5" {
		t.Fatalf("forced apply: replicas %s, want 5", got)
	}
	managers := jsonpath(t, s, "deploy/web", `{range .metadata.managedFields[*]}{.manager}:{.operation} {end}`)
	if !strings.Contains(managers, "kubectl:Apply") || !strings.Contains(managers, "ops:Apply") {
		t.Fatalf("managedFields managers = %q", managers)
	}
}

func TestPatchTypes(t *testing.T) {
	s := StartServer(t, ServerOptions{})
	s.MustKubectl(t, "apply", "-f", writeFile(t, "v1.yaml", deploymentV1))
	cases := []struct{ kind, patch, path, want string }{
		{"strategic", `{"spec":{"template":{"spec":{"containers":[{"name":"web","image":"nginx:1.26"}]}}}}`, "{.spec.template.spec.containers[*].image}", "nginx:1.26"},
		{"merge", `{"metadata":{"labels":{"tier":"front"}}}`, "{.metadata.labels.tier}", "front"},
		{"json", `[{"op":"replace","path":"/spec/replicas","value":4}]`, "{.spec.replicas}", "4"},
	}
	for _, c := range cases {
		expectExact(t, "patch --type="+c.kind, s.Kubectl(t, "patch", "deployment", "web", "--type="+c.kind, "-p", c.patch),
			"deployment.apps/web patched\n", "", 0)
		if got := jsonpath(t, s, "deploy/web", c.path); got != c.want {
			t.Errorf("after a %s patch: %s = %q, want %q", c.kind, c.path, got, c.want)
		}
	}
	// A strategic patch merges the container list by name; a merge patch of
	// the same list would have replaced it.
	if got := jsonpath(t, s, "deploy/web", "{.spec.template.spec.containers[*].name}"); got != "web" {
		t.Errorf("containers after the patches: %q", got)
	}
}

func TestDiffAndServerDryRun(t *testing.T) {
	s := StartServer(t, ServerOptions{})
	s.MustKubectl(t, "apply", "-f", writeFile(t, "v1.yaml", deploymentV1))
	edited := writeFile(t, "v2.yaml", strings.Replace(deploymentV1, "replicas: 2", "replicas: 3", 1))
	r := s.Kubectl(t, "diff", "-f", edited)
	if r.ExitCode != 1 || !strings.Contains(r.Stdout, "-  replicas: 2") || !strings.Contains(r.Stdout, "+  replicas: 3") {
		t.Fatalf("kubectl diff (exit 1 and the replica change expected):\n%s", r)
	}
	expectExact(t, "apply --dry-run=server", s.Kubectl(t, "apply", "--dry-run=server", "-f", edited),
		"deployment.apps/web configured (server dry run)\n", "", 0)
	if got := jsonpath(t, s, "deploy/web", "{.spec.replicas}"); got != "2" {
		t.Fatalf("a server dry run stored replicas %s", got)
	}
	newPod := writeFile(t, "pod.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: dry}\nspec: {containers: [{name: c, image: busybox}]}\n")
	expectExact(t, "create --dry-run=server", s.Kubectl(t, "create", "--dry-run=server", "-f", newPod),
		"pod/dry created (server dry run)\n", "", 0)
	if r := s.Kubectl(t, "get", "pod", "dry"); r.ExitCode == 0 {
		t.Fatalf("a dry-run create stored the pod:\n%s", r)
	}
	expectExact(t, "delete --dry-run=server", s.Kubectl(t, "delete", "deploy", "web", "--dry-run=server"),
		"deployment.apps \"web\" deleted from default namespace (server dry run)\n", "", 0)
	s.MustKubectl(t, "get", "deploy", "web")
}

func TestExplain(t *testing.T) {
	s := StartServer(t, ServerOptions{})
	out := s.MustKubectl(t, "explain", "pod.spec.containers")
	for _, want := range []string{"KIND:       Pod", "VERSION:    v1", "FIELD: containers <[]Container>", "image\t<string>", "ports\t<[]ContainerPort>"} {
		if !strings.Contains(out, want) {
			t.Errorf("explain pod.spec.containers lacks %q:\n%s", want, out)
		}
	}
	out = s.MustKubectl(t, "explain", "deployment.spec.strategy")
	for _, want := range []string{"GROUP:      apps", "KIND:       Deployment", "FIELD: strategy <DeploymentStrategy>", "rollingUpdate\t<RollingUpdateDeployment>"} {
		if !strings.Contains(out, want) {
			t.Errorf("explain deployment.spec.strategy lacks %q:\n%s", want, out)
		}
	}
}

func TestManifestErrors(t *testing.T) {
	s := StartServer(t, ServerOptions{})
	cases := []struct{ name, manifest, want string }{
		{"unknown field", "apiVersion: v1\nkind: Pod\nmetadata: {name: typo}\nspec: {containers: [{name: c, imagee: busybox}]}\n",
			`Error from server (BadRequest): error when creating "STDIN": Pod in version "v1" cannot be handled as a Pod: strict decoding error: unknown field "spec.containers[0].imagee"`},
		{"bad label", "apiVersion: v1\nkind: Pod\nmetadata: {name: lbl, labels: {app: -bad-}}\nspec: {containers: [{name: c, image: busybox}]}\n",
			`The Pod "lbl" is invalid: metadata.labels: Invalid value: "-bad-": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')`},
	}
	for _, c := range cases {
		r := s.KubectlStdin(t, c.manifest, "apply", "-f", "-")
		if r.ExitCode == 0 || strings.TrimSpace(r.Stderr) != c.want {
			t.Errorf("%s:\n got %s\nwant stderr %s", c.name, r, c.want)
		}
	}
	s.MustKubectl(t, "apply", "-f", writeFile(t, "v1.yaml", deploymentV1))
	changed := strings.Replace(strings.Replace(deploymentV1, "matchLabels: {app: web}", "matchLabels: {app: web2}", 1),
		"labels: {app: web}}", "labels: {app: web2}}", 1)
	r := s.Kubectl(t, "apply", "-f", writeFile(t, "selector.yaml", changed))
	if r.ExitCode == 0 || !strings.Contains(r.Stderr, `The Deployment "web" is invalid: spec.selector: Invalid value: {"matchLabels":{"app":"web2"}}: field is immutable`) {
		t.Errorf("changing an immutable selector:\n%s", r)
	}
}

func TestDescribe(t *testing.T) {
	s := StartServer(t, ServerOptions{})
	startSimNodes(t, s, "edge-1")
	s.MustKubectl(t, "apply", "-f", writeFile(t, "v1.yaml", deploymentV1))
	waitKubectl(t, s, "the rollout", func(out string) bool {
		return strings.Contains(out, "successfully rolled out")
	}, "rollout", "status", "deployment/web", "--timeout=30s")
	out := s.MustKubectl(t, "describe", "deployment", "web")
	for _, want := range []string{
		"Name:                   web", "Namespace:              default", "Selector:               app=web",
		"Replicas:               2 desired | 2 updated | 2 total | 2 available | 0 unavailable",
		"StrategyType:           RollingUpdate", "RollingUpdateStrategy:  25% max unavailable, 25% max surge",
		"Available      True    MinimumReplicasAvailable", "Progressing    True    NewReplicaSetAvailable",
		"NewReplicaSet:   web-", "ScalingReplicaSet", "Scaled up replica set web-",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("describe deployment lacks %q:\n%s", want, out)
		}
	}
	for _, what := range [][]string{{"pods", "-l", "app=web"}, {"rs", "-l", "app=web"}, {"svc", "kubernetes"}, {"node", "edge-1"}, {"namespace", "default"}} {
		if r := s.Kubectl(t, append([]string{"describe"}, what...)...); r.ExitCode != 0 || !strings.Contains(r.Stdout, "Name:") {
			t.Errorf("describe %v:\n%s", what, r)
		}
	}
	// kubectl shows events when it describes one object, as against Kubernetes.
	pod := jsonpath(t, s, "pods", "{.items[0].metadata.name}")
	if out := s.MustKubectl(t, "describe", "pod", pod); !strings.Contains(out, "Successfully assigned default/"+pod+" to edge-1") {
		t.Errorf("describe pod lacks the Scheduled event:\n%s\nevents:\n%s", out, s.Kubectl(t, "get", "events"))
	}
}
