package dns

import (
	"context"
	"fmt"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
)

// The kube-dns Service the control plane creates, and the manager named on
// the slices the agents write for it; the EndpointSlice controller leaves
// slices of other managers alone. A label value cannot hold a slash, so
// the manager is named in the style of upstream's
// endpointslice-controller.k8s.io.
const (
	ServiceName      = "kube-dns"
	ServiceNamespace = metav1.NamespaceSystem
	ManagedBy        = "agent.wasmkube.io"
)

// SliceName is the EndpointSlice a node publishes its DNS server in.
func SliceName(nodeName string) string { return ServiceName + "-" + nodeName }

// PublishEndpoint creates or updates the node's EndpointSlice of the
// kube-dns Service so that it names the node's DNS server at addr:port
// (ports dns/UDP and dns-tcp/TCP). The slice is owned by the Node, so it
// goes when the node is deleted; a missing Node only leaves the owner out.
func PublishEndpoint(ctx context.Context, client kubernetes.Interface, nodeName string, addr netip.Addr, port uint16) error {
	if !addr.IsValid() {
		return fmt.Errorf("dns: publishing node %s: invalid address", nodeName)
	}
	addr = addr.Unmap()
	want := endpointSlice(nodeName, addr, port)
	node, err := client.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
	switch {
	case err == nil:
		want.OwnerReferences = []metav1.OwnerReference{{
			APIVersion: "v1", Kind: "Node", Name: node.Name, UID: node.UID,
		}}
	case !apierrors.IsNotFound(err):
		return fmt.Errorf("dns: publishing node %s: getting the node: %w", nodeName, err)
	}

	esClient := client.DiscoveryV1().EndpointSlices(ServiceNamespace)
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := esClient.Get(ctx, want.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			_, err = esClient.Create(ctx, want, metav1.CreateOptions{})
			if apierrors.IsAlreadyExists(err) {
				return apierrors.NewConflict(discoveryv1.Resource("endpointslices"), want.Name, err)
			}
			return err
		}
		if err != nil {
			return err
		}
		if sameSlice(cur, want) {
			return nil
		}
		upd := cur.DeepCopy()
		if upd.Labels == nil {
			upd.Labels = map[string]string{}
		}
		for k, v := range want.Labels {
			upd.Labels[k] = v
		}
		if want.OwnerReferences != nil {
			upd.OwnerReferences = want.OwnerReferences
		}
		upd.AddressType, upd.Endpoints, upd.Ports = want.AddressType, want.Endpoints, want.Ports
		_, err = esClient.Update(ctx, upd, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("dns: publishing endpoint slice %s/%s: %w", ServiceNamespace, want.Name, err)
	}
	return nil
}

func endpointSlice(nodeName string, addr netip.Addr, port uint16) *discoveryv1.EndpointSlice {
	addressType := discoveryv1.AddressTypeIPv4
	if addr.Is6() {
		addressType = discoveryv1.AddressTypeIPv6
	}
	p := int32(port)
	return &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Name:      SliceName(nodeName),
			Namespace: ServiceNamespace,
			Labels: map[string]string{
				discoveryv1.LabelServiceName: ServiceName,
				discoveryv1.LabelManagedBy:   ManagedBy,
			},
		},
		AddressType: addressType,
		Endpoints: []discoveryv1.Endpoint{{
			Addresses: []string{addr.String()},
			NodeName:  ptr.To(nodeName),
			Conditions: discoveryv1.EndpointConditions{
				Ready: ptr.To(true), Serving: ptr.To(true), Terminating: ptr.To(false),
			},
		}},
		Ports: []discoveryv1.EndpointPort{
			{Name: ptr.To("dns"), Protocol: ptr.To(corev1.ProtocolUDP), Port: &p},
			{Name: ptr.To("dns-tcp"), Protocol: ptr.To(corev1.ProtocolTCP), Port: &p},
		},
	}
}

// sameSlice tells whether cur already says what want does, so that a
// periodic publish writes nothing.
func sameSlice(cur, want *discoveryv1.EndpointSlice) bool {
	for k, v := range want.Labels {
		if cur.Labels[k] != v {
			return false
		}
	}
	if want.OwnerReferences != nil && !equality.Semantic.DeepEqual(cur.OwnerReferences, want.OwnerReferences) {
		return false
	}
	return cur.AddressType == want.AddressType &&
		equality.Semantic.DeepEqual(cur.Endpoints, want.Endpoints) && equality.Semantic.DeepEqual(cur.Ports, want.Ports)
}
