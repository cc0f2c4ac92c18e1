package resources

import (
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	coordinationv1 "k8s.io/api/coordination/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	eventsv1 "k8s.io/api/events/v1"
	networkingv1 "k8s.io/api/networking/v1"
	nodev1 "k8s.io/api/node/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/wasmkube/wasmkube/control/registry"
)

func others() []*registry.Strategy {
	return []*registry.Strategy{
		define(discoveryv1.SchemeGroupVersion, "EndpointSlice", "endpointslices", true,
			func() runtime.Object { return &discoveryv1.EndpointSlice{} },
			func() runtime.Object { return &discoveryv1.EndpointSliceList{} }),
		define(coordinationv1.SchemeGroupVersion, "Lease", "leases", true,
			func() runtime.Object { return &coordinationv1.Lease{} },
			func() runtime.Object { return &coordinationv1.LeaseList{} }),
		define(autoscalingv2.SchemeGroupVersion, "HorizontalPodAutoscaler", "horizontalpodautoscalers", true,
			func() runtime.Object { return &autoscalingv2.HorizontalPodAutoscaler{} },
			func() runtime.Object { return &autoscalingv2.HorizontalPodAutoscalerList{} },
			short("hpa"), inAll, withStatus, withGeneration, resetStatus),
		define(nodev1.SchemeGroupVersion, "RuntimeClass", "runtimeclasses", false,
			func() runtime.Object { return &nodev1.RuntimeClass{} },
			func() runtime.Object { return &nodev1.RuntimeClassList{} }),
		define(networkingv1.SchemeGroupVersion, "NetworkPolicy", "networkpolicies", true,
			func() runtime.Object { return &networkingv1.NetworkPolicy{} },
			func() runtime.Object { return &networkingv1.NetworkPolicyList{} },
			short("netpol"), withGeneration),
		define(eventsv1.SchemeGroupVersion, "Event", "events", true,
			func() runtime.Object { return &eventsv1.Event{} },
			func() runtime.Object { return &eventsv1.EventList{} },
			short("ev")),
		define(storagev1.SchemeGroupVersion, "StorageClass", "storageclasses", false,
			func() runtime.Object { return &storagev1.StorageClass{} },
			func() runtime.Object { return &storagev1.StorageClassList{} },
			short("sc")),
	}
}
