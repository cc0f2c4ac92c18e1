package proxy

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/wasmkube/wasmkube/ebpf/lb"
)

var testNode = node{name: "n1", ips: []netip.Addr{netip.MustParseAddr("192.0.2.1")}}

func service(mut ...func(*corev1.Service)) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"},
		Spec: corev1.ServiceSpec{
			Type: corev1.ServiceTypeClusterIP, ClusterIP: "10.96.0.10", ClusterIPs: []string{"10.96.0.10"},
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}},
		},
	}
	for _, m := range mut {
		m(s)
	}
	return s
}

type ep struct {
	ip, node                    string
	ready, serving, terminating *bool
}

func slice(name string, port int32, eps ...ep) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "default", Name: name, Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To(port), Protocol: ptr.To(corev1.ProtocolTCP)}},
	}
	for _, e := range eps {
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{
			Addresses:  []string{e.ip},
			NodeName:   ptr.To(e.node),
			Conditions: discoveryv1.EndpointConditions{Ready: e.ready, Serving: e.serving, Terminating: e.terminating},
		})
	}
	return s
}

// render prints frontends one a line, sorted, as "addr:port/proto scope -> backends [affinity]".
func render(m map[lb.Frontend]lb.Service) string {
	var lines []string
	for fe, s := range m {
		var bs []string
		for _, b := range s.Backends {
			bs = append(bs, fmt.Sprintf("%s:%d", b.Addr, b.Port))
		}
		line := fmt.Sprintf("%s:%d/%s %s -> [%s]", fe.Addr, fe.Port, fe.Proto, fe.Scope, strings.Join(bs, " "))
		if s.AffinityTimeout != 0 {
			line += " affinity=" + s.AffinityTimeout.String()
		}
		if s.HostOnly {
			line += " host-only"
		}
		if s.NodeAddr {
			line += " node-addr"
		}
		lines = append(lines, line)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func TestTranslate(t *testing.T) {
	yes, no := ptr.To(true), ptr.To(false)
	local := ep{ip: "10.244.0.5", node: "n1"}
	remote := ep{ip: "10.244.1.5", node: "n2"}
	nodePort := func(s *corev1.Service) {
		s.Spec.Type = corev1.ServiceTypeNodePort
		s.Spec.Ports[0].NodePort = 30080
	}
	for _, tc := range []struct {
		name   string
		svc    *corev1.Service
		slices []*discoveryv1.EndpointSlice
		want   []string
	}{{
		name: "cluster IP, ready endpoints sorted and deduplicated across slices",
		svc:  service(),
		slices: []*discoveryv1.EndpointSlice{
			slice("a", 8080, remote, local), slice("b", 8080, local),
		},
		want: []string{"10.96.0.10:80/TCP socket -> [10.244.0.5:8080 10.244.1.5:8080]"},
	}, {
		name: "external name and headless are skipped",
		svc: service(func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeExternalName
			s.Spec.ClusterIP = ""
			s.Spec.ClusterIPs = nil
		}),
	}, {
		name:   "headless",
		svc:    service(func(s *corev1.Service) { s.Spec.ClusterIP = "None"; s.Spec.ClusterIPs = []string{"None"} }),
		slices: []*discoveryv1.EndpointSlice{slice("a", 8080, local)},
	}, {
		name: "SCTP ports skipped, UDP kept, port matched by name and protocol",
		svc: service(func(s *corev1.Service) {
			s.Spec.Ports = []corev1.ServicePort{
				{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP},
				{Name: "sctp", Port: 99, Protocol: corev1.ProtocolSCTP},
			}
		}),
		slices: []*discoveryv1.EndpointSlice{func() *discoveryv1.EndpointSlice {
			s := slice("a", 0, local)
			s.Ports = []discoveryv1.EndpointPort{
				{Name: ptr.To("dns"), Port: ptr.To[int32](5353), Protocol: ptr.To(corev1.ProtocolTCP)},
				{Name: ptr.To("dns"), Port: ptr.To[int32](1053), Protocol: ptr.To(corev1.ProtocolUDP)},
				{Name: ptr.To("sctp"), Port: ptr.To[int32](99), Protocol: ptr.To(corev1.ProtocolSCTP)},
			}
			return s
		}()},
		want: []string{"10.96.0.10:53/UDP socket -> [10.244.0.5:1053]"},
	}, {
		name:   "no endpoints: frontend with no backends",
		svc:    service(),
		slices: []*discoveryv1.EndpointSlice{slice("a", 8080)},
		want:   []string{"10.96.0.10:80/TCP socket -> []"},
	}, {
		name: "IPv6 slices ignored",
		svc:  service(),
		slices: []*discoveryv1.EndpointSlice{func() *discoveryv1.EndpointSlice {
			s := slice("a", 8080, ep{ip: "fd00::1"})
			s.AddressType = discoveryv1.AddressTypeIPv6
			return s
		}()},
		want: []string{"10.96.0.10:80/TCP socket -> []"},
	}, {
		name:   "ready nil counts as ready, not-ready left out",
		svc:    service(),
		slices: []*discoveryv1.EndpointSlice{slice("a", 8080, ep{ip: "10.244.0.7", ready: no, serving: no}, local)},
		want:   []string{"10.96.0.10:80/TCP socket -> [10.244.0.5:8080]"},
	}, {
		name: "no ready endpoint: serving and terminating ones",
		svc:  service(),
		slices: []*discoveryv1.EndpointSlice{slice("a", 8080,
			ep{ip: "10.244.0.7", ready: no, serving: yes, terminating: yes},
			ep{ip: "10.244.0.8", ready: no, serving: no, terminating: yes},
			ep{ip: "10.244.0.9", ready: no, serving: no})},
		want: []string{"10.96.0.10:80/TCP socket -> [10.244.0.7:8080]"},
	}, {
		name: "terminating ones unused while one is ready",
		svc:  service(),
		slices: []*discoveryv1.EndpointSlice{slice("a", 8080,
			ep{ip: "10.244.0.7", ready: no, serving: yes, terminating: yes}, remote)},
		want: []string{"10.96.0.10:80/TCP socket -> [10.244.1.5:8080]"},
	}, {
		name:   "node port: node IPs both scopes, loopback socket",
		svc:    service(nodePort),
		slices: []*discoveryv1.EndpointSlice{slice("a", 8080, local, remote)},
		want: []string{
			"10.96.0.10:80/TCP socket -> [10.244.0.5:8080 10.244.1.5:8080]",
			"127.0.0.1:30080/TCP socket -> [10.244.0.5:8080 10.244.1.5:8080] host-only",
			"192.0.2.1:30080/TCP external -> [10.244.0.5:8080 10.244.1.5:8080]",
			"192.0.2.1:30080/TCP socket -> [10.244.0.5:8080 10.244.1.5:8080] node-addr",
		},
	}, {
		name: "externalTrafficPolicy Local narrows external frontends only",
		svc: service(nodePort, func(s *corev1.Service) {
			s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
			s.Spec.ExternalIPs = []string{"198.51.100.7"}
		}),
		slices: []*discoveryv1.EndpointSlice{slice("a", 8080, local, remote)},
		want: []string{
			"10.96.0.10:80/TCP socket -> [10.244.0.5:8080 10.244.1.5:8080]",
			"127.0.0.1:30080/TCP socket -> [10.244.0.5:8080 10.244.1.5:8080] host-only",
			"192.0.2.1:30080/TCP external -> [10.244.0.5:8080]",
			"192.0.2.1:30080/TCP socket -> [10.244.0.5:8080 10.244.1.5:8080] node-addr",
			"198.51.100.7:80/TCP external -> [10.244.0.5:8080]",
			"198.51.100.7:80/TCP socket -> [10.244.0.5:8080 10.244.1.5:8080]",
		},
	}, {
		name: "internalTrafficPolicy Local narrows the cluster IP",
		svc: service(func(s *corev1.Service) {
			s.Spec.InternalTrafficPolicy = ptr.To(corev1.ServiceInternalTrafficPolicyLocal)
		}),
		slices: []*discoveryv1.EndpointSlice{slice("a", 8080, local, remote)},
		want:   []string{"10.96.0.10:80/TCP socket -> [10.244.0.5:8080]"},
	}, {
		name: "local policy with no local endpoint: no backends",
		svc: service(func(s *corev1.Service) {
			s.Spec.InternalTrafficPolicy = ptr.To(corev1.ServiceInternalTrafficPolicyLocal)
		}),
		slices: []*discoveryv1.EndpointSlice{slice("a", 8080, remote)},
		want:   []string{"10.96.0.10:80/TCP socket -> []"},
	}, {
		name: "load balancer: node port and ingress IPs",
		svc: service(func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeLoadBalancer
			s.Spec.Ports[0].NodePort = 30081
			s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "203.0.113.4"}, {Hostname: "lb.example"}}
		}),
		slices: []*discoveryv1.EndpointSlice{slice("a", 8080, remote)},
		want: []string{
			"10.96.0.10:80/TCP socket -> [10.244.1.5:8080]",
			"127.0.0.1:30081/TCP socket -> [10.244.1.5:8080] host-only",
			"192.0.2.1:30081/TCP external -> [10.244.1.5:8080]",
			"192.0.2.1:30081/TCP socket -> [10.244.1.5:8080] node-addr",
			"203.0.113.4:80/TCP external -> [10.244.1.5:8080]",
			"203.0.113.4:80/TCP socket -> [10.244.1.5:8080]",
		},
	}, {
		name: "ClusterIP type ignores a stray nodePort",
		svc:  service(func(s *corev1.Service) { s.Spec.Ports[0].NodePort = 30082 }),
		want: []string{"10.96.0.10:80/TCP socket -> []"},
	}, {
		name: "session affinity: default and explicit timeout",
		svc: service(func(s *corev1.Service) {
			s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
		}),
		slices: []*discoveryv1.EndpointSlice{slice("a", 8080, local)},
		want:   []string{"10.96.0.10:80/TCP socket -> [10.244.0.5:8080] affinity=3h0m0s"},
	}, {
		name: "session affinity timeout from config",
		svc: service(func(s *corev1.Service) {
			s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
			s.Spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: ptr.To[int32](60)}}
		}),
		slices: []*discoveryv1.EndpointSlice{slice("a", 8080, local)},
		want:   []string{"10.96.0.10:80/TCP socket -> [10.244.0.5:8080] affinity=1m0s"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got := render(translate(tc.svc, tc.slices, testNode))
			if want := strings.Join(tc.want, "\n"); got != want {
				t.Errorf("frontends:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

// TestTranslateFrontendsDoNotShareBackends guards the datapath against one
// frontend's backend slice being changed through another's.
func TestTranslateFrontendsDoNotShareBackends(t *testing.T) {
	svc := service(func(s *corev1.Service) { s.Spec.ExternalIPs = []string{"198.51.100.7"} })
	m := translate(svc, []*discoveryv1.EndpointSlice{slice("a", 8080, ep{ip: "10.244.0.5"})}, testNode)
	var all [][]lb.Backend
	for _, s := range m {
		all = append(all, s.Backends)
	}
	all[0][0].Port = 1
	for _, bs := range all[1:] {
		if bs[0].Port == 1 {
			t.Fatal("frontends share one backend array")
		}
	}
	if !servicesEqual(lb.Service{AffinityTimeout: time.Second}, lb.Service{AffinityTimeout: time.Second, Backends: []lb.Backend{}}) ||
		servicesEqual(lb.Service{}, lb.Service{Backends: slices.Clone(all[1])}) ||
		servicesEqual(lb.Service{HostOnly: true}, lb.Service{NodeAddr: true}) {
		t.Error("servicesEqual")
	}
}
