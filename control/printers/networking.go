package printers

import (
	"fmt"
	"strconv"
	"strings"

	discoveryv1 "k8s.io/api/discovery/v1"
	discoveryv1beta1 "k8s.io/api/discovery/v1beta1"
	extensionsv1beta1 "k8s.io/api/extensions/v1beta1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// Descriptions come from the same (older) API docs upstream uses.
var (
	networkPolicyColumns = []metav1.TableColumnDefinition{
		nameColumn,
		{Name: "Pod-Selector", Type: "string", Description: extensionsv1beta1.NetworkPolicySpec{}.SwaggerDoc()["podSelector"]},
		ageColumn,
	}
	endpointSliceColumns = []metav1.TableColumnDefinition{
		nameColumn,
		{Name: "AddressType", Type: "string", Description: discoveryv1beta1.EndpointSlice{}.SwaggerDoc()["addressType"]},
		{Name: "Ports", Type: "string", Description: discoveryv1beta1.EndpointSlice{}.SwaggerDoc()["ports"]},
		{Name: "Endpoints", Type: "string", Description: discoveryv1beta1.EndpointSlice{}.SwaggerDoc()["endpoints"]},
		ageColumn,
	}
)

func (p *Printers) networkingTable(obj runtime.Object) ([]metav1.TableColumnDefinition, []metav1.TableRow, bool, error) {
	switch o := obj.(type) {
	case *networkingv1.NetworkPolicy:
		return networkPolicyColumns, one(p.networkPolicyRow(o)), true, nil
	case *networkingv1.NetworkPolicyList:
		return networkPolicyColumns, eachRow(o.Items, p.networkPolicyRow), true, nil
	case *discoveryv1.EndpointSlice:
		return endpointSliceColumns, one(p.endpointSliceRow(o)), true, nil
	case *discoveryv1.EndpointSliceList:
		return endpointSliceColumns, eachRow(o.Items, p.endpointSliceRow), true, nil
	}
	return nil, nil, false, nil
}

func (p *Printers) networkPolicyRow(np *networkingv1.NetworkPolicy) metav1.TableRow {
	return cells(np.Name, metav1.FormatLabelSelector(&np.Spec.PodSelector), p.since(np.CreationTimestamp))
}

func (p *Printers) endpointSliceRow(es *discoveryv1.EndpointSlice) metav1.TableRow {
	ports := make([]string, 0, len(es.Ports))
	for _, port := range es.Ports {
		// A nil port number means "all ports"; a name alone is still useful.
		s := "*"
		if port.Port != nil {
			s = strconv.Itoa(int(*port.Port))
		} else if port.Name != nil {
			s = *port.Name
		}
		ports = append(ports, s)
	}
	var addrs []string
	for _, ep := range es.Endpoints {
		addrs = append(addrs, ep.Addresses...)
	}
	return cells(es.Name, string(es.AddressType), truncatedList(ports), truncatedList(addrs), p.since(es.CreationTimestamp))
}

// truncatedList shows the first few entries and a count of the rest; an
// empty list reads "<unset>".
func truncatedList(items []string) string {
	if len(items) > maxListed {
		return fmt.Sprintf("%s + %d more...", strings.Join(items[:maxListed], ","), len(items)-maxListed)
	}
	if len(items) == 0 {
		return "<unset>"
	}
	return strings.Join(items, ",")
}
