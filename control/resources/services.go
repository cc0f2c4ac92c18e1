package resources

import (
	"context"
	"fmt"
	"log/slog"
	"net"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/wasmkube/wasmkube/control/allocator"
	"github.com/wasmkube/wasmkube/control/registry"
)

// ServiceAllocators give Services their cluster IPs and node ports while
// they are written, as kube-apiserver does.
type ServiceAllocators struct {
	ClusterIPs *allocator.IPRange
	NodePorts  *allocator.PortRange
}

// serviceAllocation hooks the allocators into the Service strategy. Without
// allocators (unit tests of other kinds) Services are stored as given.
func serviceAllocation(a ServiceAllocators) option {
	return func(s *registry.Strategy) {
		if a.ClusterIPs == nil || a.NodePorts == nil {
			return
		}
		s.PrepareForUpdate = keepAllocatedValues
		s.Allocate = a.allocate
		s.Release = a.release
	}
}

func needsClusterIP(svc *corev1.Service) bool {
	return svc.Spec.Type != corev1.ServiceTypeExternalName && svc.Spec.ClusterIP != corev1.ClusterIPNone
}

func needsNodePorts(svc *corev1.Service) bool {
	switch svc.Spec.Type {
	case corev1.ServiceTypeNodePort:
		return true
	case corev1.ServiceTypeLoadBalancer:
		return svc.Spec.AllocateLoadBalancerNodePorts == nil || *svc.Spec.AllocateLoadBalancerNodePorts
	}
	return false
}

// keepAllocatedValues carries the cluster IP and node ports over when an
// update leaves them empty (a replace from the original manifest), as
// upstream does, so a Service does not lose its address by being edited.
// A type change drops the fields only the old type had, unless the update
// set them itself.
func keepAllocatedValues(obj, old runtime.Object) {
	svc, prev := obj.(*corev1.Service), old.(*corev1.Service)
	if !needsNodePorts(svc) && needsNodePorts(prev) {
		if svc.Spec.ExternalTrafficPolicy == prev.Spec.ExternalTrafficPolicy {
			svc.Spec.ExternalTrafficPolicy = ""
		}
		if svc.Spec.HealthCheckNodePort == prev.Spec.HealthCheckNodePort {
			svc.Spec.HealthCheckNodePort = 0
		}
		for i := range svc.Spec.Ports {
			if svc.Spec.Ports[i].NodePort == previousNodePort(prev, svc.Spec.Ports[i]) {
				svc.Spec.Ports[i].NodePort = 0
			}
		}
	}
	if needsClusterIP(svc) && svc.Spec.ClusterIP == "" && needsClusterIP(prev) {
		svc.Spec.ClusterIP, svc.Spec.ClusterIPs = prev.Spec.ClusterIP, prev.Spec.ClusterIPs
	}
	if needsNodePorts(svc) && needsNodePorts(prev) {
		for i := range svc.Spec.Ports {
			if svc.Spec.Ports[i].NodePort == 0 {
				svc.Spec.Ports[i].NodePort = previousNodePort(prev, svc.Spec.Ports[i])
			}
		}
	}
}

func previousNodePort(prev *corev1.Service, port corev1.ServicePort) int32 {
	for _, p := range prev.Spec.Ports {
		if p.Port == port.Port && p.Protocol == port.Protocol {
			return p.NodePort
		}
	}
	return 0
}

func heldNodePorts(svc *corev1.Service) map[int32]bool {
	held := map[int32]bool{}
	if svc != nil && needsNodePorts(svc) {
		for _, p := range svc.Spec.Ports {
			if p.NodePort != 0 {
				held[p.NodePort] = true
			}
		}
	}
	return held
}

func heldClusterIP(svc *corev1.Service) string {
	if svc == nil || !needsClusterIP(svc) {
		return ""
	}
	return svc.Spec.ClusterIP
}

// allocate reserves the cluster IP and node ports obj has that old did not.
func (a ServiceAllocators) allocate(ctx context.Context, obj, old runtime.Object) (func(), error) {
	svc := obj.(*corev1.Service)
	var prev *corev1.Service
	if old != nil {
		prev = old.(*corev1.Service)
	}
	var undo []func()
	rollback := func() {
		for _, u := range undo {
			u()
		}
	}
	invalid := func(path *field.Path, value any, msg string) error {
		rollback()
		return apierrors.NewInvalid(corev1.SchemeGroupVersion.WithKind("Service").GroupKind(), svc.Name, field.ErrorList{field.Invalid(path, value, msg)})
	}
	if needsClusterIP(svc) && heldClusterIP(prev) == "" {
		if svc.Spec.ClusterIP == "" {
			ip, err := a.ClusterIPs.AllocateNext(ctx)
			if err != nil {
				return nil, apierrors.NewInternalError(fmt.Errorf("failed to allocate a serviceIP: %w", err))
			}
			svc.Spec.ClusterIP = ip.String()
			svc.Spec.ClusterIPs = []string{ip.String()}
		} else {
			ip := net.ParseIP(svc.Spec.ClusterIP)
			if ip == nil {
				return nil, invalid(field.NewPath("spec", "clusterIPs"), svc.Spec.ClusterIPs, "must be a valid IP address")
			}
			if err := a.ClusterIPs.Allocate(ctx, ip); err != nil {
				return nil, invalid(field.NewPath("spec", "clusterIPs"), []string{svc.Spec.ClusterIP}, fmt.Sprintf("failed to allocate IP %s: %v", ip, err))
			}
			if len(svc.Spec.ClusterIPs) == 0 {
				svc.Spec.ClusterIPs = []string{svc.Spec.ClusterIP}
			}
		}
		ip := net.ParseIP(svc.Spec.ClusterIP)
		undo = append(undo, func() { a.releaseIP(ip) })
	}
	if needsNodePorts(svc) {
		held := heldNodePorts(prev)
		for i := range svc.Spec.Ports {
			port := &svc.Spec.Ports[i]
			path := field.NewPath("spec", "ports").Index(i).Child("nodePort")
			switch {
			case port.NodePort == 0:
				n, err := a.NodePorts.AllocateNext(ctx)
				if err != nil {
					return nil, invalid(path, port.NodePort, fmt.Sprintf("failed to allocate a nodePort: %v", err))
				}
				port.NodePort = int32(n)
			case held[port.NodePort]:
				continue // already this Service's
			default:
				if err := a.NodePorts.Allocate(ctx, int(port.NodePort)); err != nil {
					return nil, invalid(path, port.NodePort, err.Error())
				}
			}
			n := int(port.NodePort)
			held[port.NodePort] = true
			undo = append(undo, func() { a.releasePort(n) })
		}
	}
	return rollback, nil
}

// release gives back what old held and obj (nil when deleted) does not.
func (a ServiceAllocators) release(ctx context.Context, obj, old runtime.Object) {
	prev := old.(*corev1.Service)
	var svc *corev1.Service
	if obj != nil {
		svc = obj.(*corev1.Service)
	}
	if ip := heldClusterIP(prev); ip != "" && heldClusterIP(svc) != ip {
		a.releaseIP(net.ParseIP(ip))
	}
	still := heldNodePorts(svc)
	for port := range heldNodePorts(prev) {
		if !still[port] {
			a.releasePort(int(port))
		}
	}
}

// Releasing is best effort: a failure leaves an address marked used (leaked
// until an operator frees it), never handed out twice.
func (a ServiceAllocators) releaseIP(ip net.IP) {
	if err := a.ClusterIPs.Release(context.Background(), ip); err != nil {
		slog.Warn("releasing a cluster IP", "ip", ip, "err", err)
	}
}

func (a ServiceAllocators) releasePort(port int) {
	if err := a.NodePorts.Release(context.Background(), port); err != nil {
		slog.Warn("releasing a node port", "port", port, "err", err)
	}
}
