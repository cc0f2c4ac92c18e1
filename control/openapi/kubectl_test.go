package openapi

import (
	"bytes"
	"net/http/httptest"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/cli-runtime/pkg/resource"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	explainv2 "k8s.io/kubectl/pkg/explain/v2"
)

// TestKubectlClientPaths runs the client code kubectl itself uses against
// the handler: the fieldValidation support check of apply and create, and
// the explain renderer.
func TestKubectlClientPaths(t *testing.T) {
	srv := httptest.NewServer(newSpecs(t).Handler())
	defer srv.Close()
	cfg := &rest.Config{Host: srv.URL}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	verifier := resource.NewQueryParamVerifierV3(dyn, dc.OpenAPIV3(), resource.QueryParamFieldValidation)
	if err := verifier.HasSupport(corev1.SchemeGroupVersion.WithKind("Pod")); err != nil {
		t.Errorf("fieldValidation support for Pod: %v", err)
	}
	if err := verifier.HasSupport(appsv1.SchemeGroupVersion.WithKind("Deployment")); err != nil {
		t.Errorf("fieldValidation support for Deployment: %v", err)
	}

	var out bytes.Buffer
	err = explainv2.PrintModelDescription([]string{"spec", "containers"}, &out, dc.OpenAPIV3(),
		corev1.SchemeGroupVersion.WithResource("pods"), false, 0, "plaintext")
	if err != nil {
		t.Fatalf("explain pod.spec.containers: %v", err)
	}
	for _, want := range []string{"KIND:       Pod", "VERSION:    v1", "FIELD: containers <[]Container>", "DESCRIPTION:", "FIELDS:", "image\t<string>", "name\t<string> -required-", "ports\t<[]ContainerPort>"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("explain pod.spec.containers lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	err = explainv2.PrintModelDescription([]string{"spec", "strategy"}, &out, dc.OpenAPIV3(),
		appsv1.SchemeGroupVersion.WithResource("deployments"), false, 0, "plaintext")
	if err != nil {
		t.Fatalf("explain deployment.spec.strategy: %v", err)
	}
	for _, want := range []string{"GROUP:      apps", "KIND:       Deployment", "FIELD: strategy <DeploymentStrategy>", "rollingUpdate\t<RollingUpdateDeployment>", "type\t<string>", "enum: Recreate, RollingUpdate", "Possible enum values:"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("explain deployment.spec.strategy lacks %q:\n%s", want, out.String())
		}
	}
}
