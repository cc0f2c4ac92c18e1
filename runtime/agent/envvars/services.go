package envvars

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// masterServiceName is the Service every pod gets variables for, whether or
// not its enableServiceLinks is set: in-cluster clients find the API
// server through KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT.
const masterServiceName = "kubernetes"

// serviceEnv returns the variables of the Services a pod in namespace ns
// sees: the kubernetes Service of masterNS always, and every Service of ns
// with a cluster IP when links is true. A Service of ns named kubernetes
// takes the place of the master one, as it does in kubelet.
func serviceEnv(ctx context.Context, src Sources, ns string, links bool, masterNS string) (*orderedEnv, error) {
	chosen := map[string]*corev1.Service{}
	if links {
		svcs, err := listServices(ctx, src, ns)
		if err != nil {
			return nil, err
		}
		for _, s := range svcs {
			chosen[s.Name] = s
		}
	}
	if _, ok := chosen[masterServiceName]; !ok && !(links && ns == masterNS) {
		svcs, err := listServices(ctx, src, masterNS)
		if err != nil {
			return nil, err
		}
		for _, s := range svcs {
			if s.Name == masterServiceName {
				chosen[s.Name] = s
			}
		}
	}

	names := make([]string, 0, len(chosen))
	for name := range chosen {
		names = append(names, name)
	}
	slices.Sort(names)
	env := newOrderedEnv()
	for _, name := range names {
		addServiceVars(env, chosen[name])
	}
	return env, nil
}

// listServices lists the Services of ns that have a cluster IP; headless
// Services and those without an IP yet give no variables.
func listServices(ctx context.Context, src Sources, ns string) ([]*corev1.Service, error) {
	all, err := src.Services(ctx, ns)
	if err != nil {
		return nil, fmt.Errorf("failed to list services when setting up env vars: %w", err)
	}
	var out []*corev1.Service
	for _, s := range all {
		if s != nil && hasClusterIP(s) {
			out = append(out, s)
		}
	}
	return out, nil
}

func hasClusterIP(s *corev1.Service) bool {
	ip := s.Spec.ClusterIP
	return ip != "" && ip != corev1.ClusterIPNone
}

// serviceVarName turns a Service or port name into the stem of a variable
// name: upper case, with '-' as '_'.
func serviceVarName(name string) string {
	return strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// addServiceVars sets the variables of one Service: FOO_SERVICE_HOST,
// FOO_SERVICE_PORT (the first port), FOO_SERVICE_PORT_<NAME> for each named
// port, then the docker-link variables.
func addServiceVars(env *orderedEnv, s *corev1.Service) {
	if len(s.Spec.Ports) == 0 {
		return
	}
	prefix := serviceVarName(s.Name)
	ip := s.Spec.ClusterIP
	env.set(prefix+"_SERVICE_HOST", ip)
	portVar := prefix + "_SERVICE_PORT"
	env.set(portVar, strconv.Itoa(int(s.Spec.Ports[0].Port)))
	for _, p := range s.Spec.Ports {
		if p.Name != "" {
			env.set(portVar+"_"+serviceVarName(p.Name), strconv.Itoa(int(p.Port)))
		}
	}
	addLinkVars(env, prefix, ip, s.Spec.Ports)
}

// addLinkVars sets the variables docker links used to set: FOO_PORT for the
// first port, and for each port FOO_PORT_<port>_<PROTO> with its _PROTO,
// _PORT and _ADDR companions.
func addLinkVars(env *orderedEnv, prefix, ip string, ports []corev1.ServicePort) {
	for i, p := range ports {
		proto := string(p.Protocol)
		if proto == "" {
			proto = string(corev1.ProtocolTCP)
		}
		lower := strings.ToLower(proto)
		port := strconv.Itoa(int(p.Port))
		url := lower + "://" + net.JoinHostPort(ip, port)
		if i == 0 {
			env.set(prefix+"_PORT", url)
		}
		stem := prefix + "_PORT_" + port + "_" + strings.ToUpper(proto)
		env.set(stem, url)
		env.set(stem+"_PROTO", lower)
		env.set(stem+"_PORT", port)
		env.set(stem+"_ADDR", ip)
	}
}
