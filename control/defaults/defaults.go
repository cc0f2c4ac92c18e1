package defaults

import (
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// Apply sets upstream's defaults on a typed object (pointer to a k8s.io/api
// type) in place. Unknown types are left alone. Applying twice is harmless.
func Apply(obj runtime.Object) {
	switch o := obj.(type) {
	case *corev1.Namespace:
		DefaultNamespace(o)
	case *corev1.Pod:
		DefaultPod(o)
	case *corev1.Service:
		DefaultService(o)
	case *corev1.Endpoints:
		DefaultEndpoints(o)
	case *corev1.Node:
		DefaultNode(o)
	case *corev1.Secret:
		DefaultSecret(o)
	case *corev1.PersistentVolume:
		DefaultPersistentVolume(o)
	case *corev1.PersistentVolumeClaim:
		DefaultPersistentVolumeClaim(o)
	case *appsv1.Deployment:
		DefaultDeployment(o)
	case *appsv1.ReplicaSet:
		DefaultReplicaSet(o)
	case *appsv1.DaemonSet:
		DefaultDaemonSet(o)
	case *appsv1.StatefulSet:
		DefaultStatefulSet(o)
	case *batchv1.Job:
		DefaultJob(o)
	case *batchv1.CronJob:
		DefaultCronJob(o)
	case *discoveryv1.EndpointSlice:
		DefaultEndpointSlice(o)
	case *autoscalingv2.HorizontalPodAutoscaler:
		DefaultHorizontalPodAutoscaler(o)
	case *networkingv1.NetworkPolicy:
		DefaultNetworkPolicy(o)
	case *storagev1.StorageClass:
		DefaultStorageClass(o)
	}
}

func ptr[T any](v T) *T { return &v }
