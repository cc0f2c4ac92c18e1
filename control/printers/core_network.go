package printers

import (
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

var (
	serviceColumns = []metav1.TableColumnDefinition{
		nameColumn,
		{Name: "Type", Type: "string", Description: corev1.ServiceSpec{}.SwaggerDoc()["type"]},
		{Name: "Cluster-IP", Type: "string", Description: corev1.ServiceSpec{}.SwaggerDoc()["clusterIP"]},
		{Name: "External-IP", Type: "string", Description: corev1.ServiceSpec{}.SwaggerDoc()["externalIPs"]},
		{Name: "Port(s)", Type: "string", Description: corev1.ServiceSpec{}.SwaggerDoc()["ports"]},
		ageColumn,
		{Name: "Selector", Type: "string", Priority: 1, Description: corev1.ServiceSpec{}.SwaggerDoc()["selector"]},
	}
	endpointsColumns = []metav1.TableColumnDefinition{
		nameColumn,
		{Name: "Endpoints", Type: "string", Description: corev1.Endpoints{}.SwaggerDoc()["subsets"]},
		ageColumn,
	}
)

// maxListed caps how many entries list-like cells show before summarising
// the rest as "+ N more...".
const maxListed = 3

func (p *Printers) serviceRow(svc *corev1.Service) metav1.TableRow {
	typ := svc.Spec.Type
	if typ == "" {
		// v1 defaulting: a service without a type is a ClusterIP service.
		typ = corev1.ServiceTypeClusterIP
	}
	clusterIP := "<none>"
	if len(svc.Spec.ClusterIPs) > 0 {
		clusterIP = svc.Spec.ClusterIPs[0]
	} else if svc.Spec.ClusterIP != "" {
		// Conversion to the internal type derives clusterIPs from clusterIP.
		clusterIP = svc.Spec.ClusterIP
	}
	ports := servicePorts(svc.Spec.Ports)
	return cells(
		svc.Name,
		string(typ),
		clusterIP,
		serviceExternalIP(svc, typ),
		valueOr(ports, "<none>"),
		p.since(svc.CreationTimestamp),
		labels.FormatLabels(svc.Spec.Selector),
	)
}

func servicePorts(ports []corev1.ServicePort) string {
	parts := make([]string, len(ports))
	for i, sp := range ports {
		proto := sp.Protocol
		if proto == "" {
			proto = corev1.ProtocolTCP // v1 default
		}
		if sp.NodePort > 0 {
			parts[i] = fmt.Sprintf("%d:%d/%s", sp.Port, sp.NodePort, proto)
		} else {
			parts[i] = fmt.Sprintf("%d/%s", sp.Port, proto)
		}
	}
	return strings.Join(parts, ",")
}

func serviceExternalIP(svc *corev1.Service, typ corev1.ServiceType) string {
	switch typ {
	case corev1.ServiceTypeClusterIP, corev1.ServiceTypeNodePort:
		if len(svc.Spec.ExternalIPs) > 0 {
			return strings.Join(svc.Spec.ExternalIPs, ",")
		}
		return "<none>"
	case corev1.ServiceTypeLoadBalancer:
		lb := loadBalancerAddresses(svc.Status.LoadBalancer.Ingress)
		if len(svc.Spec.ExternalIPs) > 0 {
			return strings.Join(append(lb, svc.Spec.ExternalIPs...), ",")
		}
		if len(lb) > 0 {
			return strings.Join(lb, ",")
		}
		return "<pending>"
	case corev1.ServiceTypeExternalName:
		return svc.Spec.ExternalName
	}
	return "<unknown>"
}

// loadBalancerAddresses returns the sorted, de-duplicated ingress points,
// preferring IP over hostname. The server renders tables wide, so the list is
// never truncated.
func loadBalancerAddresses(ingress []corev1.LoadBalancerIngress) []string {
	set := map[string]struct{}{}
	for _, in := range ingress {
		switch {
		case in.IP != "":
			set[in.IP] = struct{}{}
		case in.Hostname != "":
			set[in.Hostname] = struct{}{}
		}
	}
	out := make([]string, 0, len(set))
	for a := range set {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}

func (p *Printers) endpointsRow(ep *corev1.Endpoints) metav1.TableRow {
	return cells(ep.Name, formatEndpoints(ep), p.since(ep.CreationTimestamp))
}

// formatEndpoints lists up to three address[:port] pairs; every
// (address, port) combination counts towards the "+ N more..." tail.
func formatEndpoints(ep *corev1.Endpoints) string {
	if len(ep.Subsets) == 0 {
		return "<none>"
	}
	var list []string
	count := 0
	more := false
	for _, ss := range ep.Subsets {
		if len(ss.Ports) == 0 {
			// Headless services may publish addresses without ports.
			count += len(ss.Addresses)
			for _, a := range ss.Addresses {
				if len(list) == maxListed {
					more = true
					break
				}
				list = append(list, a.IP)
			}
			continue
		}
		for _, port := range ss.Ports {
			count += len(ss.Addresses)
			for _, a := range ss.Addresses {
				if len(list) == maxListed {
					more = true
					break
				}
				list = append(list, net.JoinHostPort(a.IP, strconv.Itoa(int(port.Port))))
			}
		}
	}
	s := strings.Join(list, ",")
	if more {
		return fmt.Sprintf("%s + %d more...", s, count-maxListed)
	}
	return s
}
