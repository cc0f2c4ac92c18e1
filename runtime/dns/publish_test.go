package dns_test

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/wasmkube/wasmkube/control/controllers/endpointslice"
	"github.com/wasmkube/wasmkube/control/controllers/framework"
	"github.com/wasmkube/wasmkube/control/controllers/garbagecollector"
	"github.com/wasmkube/wasmkube/internal/testcluster"
	"github.com/wasmkube/wasmkube/runtime/dns"
)

func TestPublishEndpoint(t *testing.T) {
	s, cs := testcluster.Start(t)
	testcluster.RunControllers(t, cs, map[string]framework.Starter{
		"endpointslice":    endpointslice.Starter(),
		"garbagecollector": garbagecollector.Starter(s.LoopbackConfig()),
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	node, err := cs.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	slices := cs.DiscoveryV1().EndpointSlices(metav1.NamespaceSystem)

	if err := dns.PublishEndpoint(ctx, cs, "n1", netip.MustParseAddr("10.244.0.1"), 53); err != nil {
		t.Fatalf("publish: %v", err)
	}
	es, err := slices.Get(ctx, "kube-dns-n1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := checkSlice(es, "10.244.0.1", 53); err != nil {
		t.Fatal(err)
	}
	if len(es.OwnerReferences) != 1 || es.OwnerReferences[0].Kind != "Node" || es.OwnerReferences[0].UID != node.UID {
		t.Fatalf("owner references = %+v, want the Node %s", es.OwnerReferences, node.UID)
	}

	// Publishing the same again writes nothing; a new address updates.
	if err := dns.PublishEndpoint(ctx, cs, "n1", netip.MustParseAddr("10.244.0.1"), 53); err != nil {
		t.Fatalf("publish again: %v", err)
	}
	again, err := slices.Get(ctx, "kube-dns-n1", metav1.GetOptions{})
	if err != nil || again.ResourceVersion != es.ResourceVersion {
		t.Fatalf("an unchanged publish wrote the slice: %v, resourceVersion %s -> %s", err, es.ResourceVersion, again.ResourceVersion)
	}
	if err := dns.PublishEndpoint(ctx, cs, "n1", netip.MustParseAddr("10.244.0.2"), 5353); err != nil {
		t.Fatalf("publish a new address: %v", err)
	}
	es, err = slices.Get(ctx, "kube-dns-n1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := checkSlice(es, "10.244.0.2", 5353); err != nil {
		t.Fatalf("after update: %v", err)
	}

	// The EndpointSlice controller leaves the selector-less kube-dns
	// Service's slices alone: once it has handled a Service created after
	// kube-dns, the agent's slice is still there, unchanged.
	marker, err := cs.CoreV1().Services(metav1.NamespaceSystem).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "marker"},
		Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": "marker"}, Ports: []corev1.ServicePort{{Port: 80}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the controller's slice of the marker Service", func(ctx context.Context) (bool, error) {
		l, err := slices.List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + marker.Name})
		return err == nil && len(l.Items) > 0, err
	})
	kept, err := slices.Get(ctx, "kube-dns-n1", metav1.GetOptions{})
	if err != nil || kept.ResourceVersion != es.ResourceVersion {
		t.Fatalf("the EndpointSlice controller touched the agent's slice: %v", err)
	}
	l, err := slices.List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=kube-dns"})
	if err != nil || len(l.Items) != 1 {
		t.Fatalf("kube-dns slices: %v, %d, want only the agent's", err, len(l.Items))
	}

	// A node whose object is missing still publishes, without an owner.
	if err := dns.PublishEndpoint(ctx, cs, "ghost", netip.MustParseAddr("10.244.9.1"), 53); err != nil {
		t.Fatalf("publish for a missing node: %v", err)
	}
	ghost, err := slices.Get(ctx, "kube-dns-ghost", metav1.GetOptions{})
	if err != nil || len(ghost.OwnerReferences) != 0 {
		t.Fatalf("ghost slice: %v, owners %+v", err, ghost.OwnerReferences)
	}

	// The slice goes with its Node.
	if err := cs.CoreV1().Nodes().Delete(ctx, "n1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the slice collected with its node", func(ctx context.Context) (bool, error) {
		_, err := slices.Get(ctx, "kube-dns-n1", metav1.GetOptions{})
		return apierrors.IsNotFound(err), err
	})
}

func checkSlice(es *discoveryv1.EndpointSlice, addr string, port int32) error {
	if es.Labels[discoveryv1.LabelServiceName] != "kube-dns" || es.Labels[discoveryv1.LabelManagedBy] != "agent.wasmkube.io" {
		return fmt.Errorf("labels = %v", es.Labels)
	}
	if es.AddressType != discoveryv1.AddressTypeIPv4 {
		return fmt.Errorf("address type = %s", es.AddressType)
	}
	if len(es.Endpoints) != 1 {
		return fmt.Errorf("endpoints = %+v", es.Endpoints)
	}
	e := es.Endpoints[0]
	if len(e.Addresses) != 1 || e.Addresses[0] != addr || e.NodeName == nil || *e.NodeName != es.Name[len("kube-dns-"):] ||
		e.Conditions.Ready == nil || !*e.Conditions.Ready {
		return fmt.Errorf("endpoint = %+v", e)
	}
	if len(es.Ports) != 2 {
		return fmt.Errorf("ports = %+v", es.Ports)
	}
	for i, want := range []struct {
		name  string
		proto corev1.Protocol
	}{{"dns", corev1.ProtocolUDP}, {"dns-tcp", corev1.ProtocolTCP}} {
		p := es.Ports[i]
		if p.Name == nil || *p.Name != want.name || p.Protocol == nil || *p.Protocol != want.proto || p.Port == nil || *p.Port != port {
			return fmt.Errorf("port %d = %+v, want %s/%s %d", i, p, want.name, want.proto, port)
		}
	}
	return nil
}

func waitFor(t *testing.T, what string, cond func(ctx context.Context) (bool, error)) {
	t.Helper()
	var last error
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		ok, err := cond(ctx)
		last = err
		return ok, nil
	})
	if err != nil {
		t.Fatalf("%s: not reached: %v (last: %v)", what, err, last)
	}
}
