package envvars

import (
	"maps"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func port(name string, p int32, proto corev1.Protocol) corev1.ServicePort {
	return corev1.ServicePort{Name: name, Port: p, Protocol: proto}
}

// kubernetesVars are the variables of the kubernetes Service of
// serviceSources' "default" namespace.
var kubernetesVars = []string{
	"KUBERNETES_SERVICE_HOST=10.0.0.1",
	"KUBERNETES_SERVICE_PORT=443",
	"KUBERNETES_SERVICE_PORT_HTTPS=443",
	"KUBERNETES_PORT=tcp://10.0.0.1:443",
	"KUBERNETES_PORT_443_TCP=tcp://10.0.0.1:443",
	"KUBERNETES_PORT_443_TCP_PROTO=tcp",
	"KUBERNETES_PORT_443_TCP_PORT=443",
	"KUBERNETES_PORT_443_TCP_ADDR=10.0.0.1",
}

// redisVars are the variables of "redis-main" in namespace "app".
var redisVars = []string{
	"REDIS_MAIN_SERVICE_HOST=10.0.0.20",
	"REDIS_MAIN_SERVICE_PORT=6379",
	"REDIS_MAIN_PORT=tcp://10.0.0.20:6379",
	"REDIS_MAIN_PORT_6379_TCP=tcp://10.0.0.20:6379",
	"REDIS_MAIN_PORT_6379_TCP_PROTO=tcp",
	"REDIS_MAIN_PORT_6379_TCP_PORT=6379",
	"REDIS_MAIN_PORT_6379_TCP_ADDR=10.0.0.20",
}

func serviceSources() *fakeSources {
	src := sources()
	src.services = map[string][]*corev1.Service{
		"default": {
			service("default", "kubernetes", "10.0.0.1", port("https", 443, corev1.ProtocolTCP)),
			service("default", "other", "10.0.0.2", port("", 80, "")),
		},
		"app": {
			service("app", "redis-main", "10.0.0.20", port("", 6379, "")),
			service("app", "headless", corev1.ClusterIPNone, port("", 80, "")),
			service("app", "pending", "", port("", 80, "")),
			service("app", "dns", "10.0.0.10",
				port("dns-udp", 53, corev1.ProtocolUDP), port("metrics", 9153, corev1.ProtocolTCP)),
		},
		"v6": {
			service("v6", "web", "fd00::10", port("", 80, corev1.ProtocolSCTP)),
		},
		"own": {
			service("own", "kubernetes", "10.9.9.9", port("", 8443, "")),
		},
	}
	return src
}

func TestResolveServiceVariables(t *testing.T) {
	ownKubernetesVars := []string{
		"KUBERNETES_SERVICE_HOST=10.9.9.9",
		"KUBERNETES_SERVICE_PORT=8443",
		"KUBERNETES_PORT=tcp://10.9.9.9:8443",
		"KUBERNETES_PORT_8443_TCP=tcp://10.9.9.9:8443",
		"KUBERNETES_PORT_8443_TCP_PROTO=tcp",
		"KUBERNETES_PORT_8443_TCP_PORT=8443",
		"KUBERNETES_PORT_8443_TCP_ADDR=10.9.9.9",
	}

	dnsVars := []string{
		"DNS_SERVICE_HOST=10.0.0.10",
		"DNS_SERVICE_PORT=53",
		"DNS_SERVICE_PORT_DNS_UDP=53",
		"DNS_SERVICE_PORT_METRICS=9153",
		"DNS_PORT=udp://10.0.0.10:53",
		"DNS_PORT_53_UDP=udp://10.0.0.10:53",
		"DNS_PORT_53_UDP_PROTO=udp",
		"DNS_PORT_53_UDP_PORT=53",
		"DNS_PORT_53_UDP_ADDR=10.0.0.10",
		"DNS_PORT_9153_TCP=tcp://10.0.0.10:9153",
		"DNS_PORT_9153_TCP_PROTO=tcp",
		"DNS_PORT_9153_TCP_PORT=9153",
		"DNS_PORT_9153_TCP_ADDR=10.0.0.10",
	}
	otherVars := []string{
		"OTHER_SERVICE_HOST=10.0.0.2",
		"OTHER_SERVICE_PORT=80",
		"OTHER_PORT=tcp://10.0.0.2:80",
		"OTHER_PORT_80_TCP=tcp://10.0.0.2:80",
		"OTHER_PORT_80_TCP_PROTO=tcp",
		"OTHER_PORT_80_TCP_PORT=80",
		"OTHER_PORT_80_TCP_ADDR=10.0.0.2",
	}
	tests := []struct {
		name      string
		namespace string
		links     *bool
		master    string
		want      []string
	}{{
		name:      "links unset (on): the namespace's Services by name, headless and IP-less skipped",
		namespace: "app",
		want:      slices.Concat(dnsVars, kubernetesVars, redisVars),
	}, {
		name:      "links on",
		namespace: "app",
		links:     ptr(true),
		want:      slices.Concat(dnsVars, kubernetesVars, redisVars),
	}, {
		name:      "links off keeps only kubernetes",
		namespace: "app",
		links:     ptr(false),
		want:      kubernetesVars,
	}, {
		name:      "links off in the master namespace keeps only kubernetes",
		namespace: "default",
		links:     ptr(false),
		want:      kubernetesVars,
	}, {
		name:      "links on in the master namespace",
		namespace: "default",
		want:      slices.Concat(kubernetesVars, otherVars),
	}, {
		name:      "a kubernetes Service of the pod's namespace replaces the master one",
		namespace: "own",
		want:      ownKubernetesVars,
	}, {
		name:      "but not when links are off",
		namespace: "own",
		links:     ptr(false),
		want:      kubernetesVars,
	}, {
		name:      "IPv6 cluster IP and SCTP",
		namespace: "v6",
		want: slices.Concat(kubernetesVars, []string{
			"WEB_SERVICE_HOST=fd00::10",
			"WEB_SERVICE_PORT=80",
			"WEB_PORT=sctp://[fd00::10]:80",
			"WEB_PORT_80_SCTP=sctp://[fd00::10]:80",
			"WEB_PORT_80_SCTP_PROTO=sctp",
			"WEB_PORT_80_SCTP_PORT=80",
			"WEB_PORT_80_SCTP_ADDR=fd00::10",
		}),
	}, {
		name:      "master namespace from the options",
		namespace: "app",
		links:     ptr(false),
		master:    "own",
		want:      ownKubernetesVars,
	}, {
		name:      "a master namespace without a kubernetes Service",
		namespace: "v6",
		links:     ptr(false),
		master:    "app",
		want:      []string{},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := testPod(corev1.Container{Name: "c"})
			pod.Namespace = tt.namespace
			pod.Spec.EnableServiceLinks = tt.links
			env, _ := resolveOK(t, serviceSources(), pod, Options{MasterServiceNamespace: tt.master})
			if !slices.Equal(env, tt.want) {
				t.Errorf("env =\n%q\nwant\n%q", env, tt.want)
			}
		})
	}
}

func TestResolveServiceVariablesAndDeclaredOnes(t *testing.T) {
	pod := testPod(corev1.Container{Env: []corev1.EnvVar{
		{Name: "KUBERNETES_SERVICE_PORT", Value: "6443"},
		{Name: "API", Value: "https://$(KUBERNETES_SERVICE_HOST):$(KUBERNETES_SERVICE_PORT)"},
		{Name: "OTHER", Value: "$(OTHER_PORT_80_TCP_ADDR)"},
	}})
	pod.Spec.EnableServiceLinks = ptr(false)
	env, _ := resolveOK(t, serviceSources(), pod, Options{})
	// The redeclared KUBERNETES_SERVICE_PORT moves to the declared ones.
	rest := slices.DeleteFunc(slices.Clone(kubernetesVars), func(v string) bool {
		return v == "KUBERNETES_SERVICE_PORT=443"
	})
	want := slices.Concat([]string{
		"KUBERNETES_SERVICE_PORT=6443",
		"API=https://10.0.0.1:6443",
		"OTHER=$(OTHER_PORT_80_TCP_ADDR)", // links off: no OTHER_* variables
	}, rest)
	if len(rest) != len(kubernetesVars)-1 {
		t.Fatalf("kubernetesVars has no KUBERNETES_SERVICE_PORT=443")
	}
	if !slices.Equal(env, want) {
		t.Errorf("env =\n%q\nwant\n%q", env, want)
	}
}

func TestResolveListsEachNamespaceOnce(t *testing.T) {
	for ns, want := range map[string]map[string]int{
		"default": {"services/default": 1},
		"app":     {"services/default": 1, "services/app": 1},
		"own":     {"services/own": 1}, // its own kubernetes Service wins
	} {
		src := serviceSources()
		pod := testPod(corev1.Container{Name: "c"})
		pod.Namespace = ns
		resolveOK(t, src, pod, Options{})
		if !maps.Equal(src.fetches, want) {
			t.Errorf("namespace %s: fetches = %v, want %v", ns, src.fetches, want)
		}
	}
}
