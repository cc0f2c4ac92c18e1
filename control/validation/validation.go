package validation

import (
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	eventsv1 "k8s.io/api/events/v1"
	networkingv1 "k8s.io/api/networking/v1"
	nodev1 "k8s.io/api/node/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Validate returns every problem with a new object, as upstream's create
// validation does. Unknown types yield no errors.
func Validate(obj runtime.Object) field.ErrorList {
	switch o := obj.(type) {
	case *corev1.Namespace:
		return ValidateNamespace(o)
	case *corev1.Pod:
		return ValidatePod(o)
	case *corev1.Service:
		return ValidateService(o)
	case *corev1.Endpoints:
		return ValidateEndpoints(o)
	case *corev1.Node:
		return ValidateNode(o)
	case *corev1.ConfigMap:
		return ValidateConfigMap(o)
	case *corev1.Secret:
		return ValidateSecret(o)
	case *corev1.Event:
		return ValidateEvent(o)
	case *corev1.ServiceAccount:
		return ValidateServiceAccount(o)
	case *corev1.PersistentVolume:
		return ValidatePersistentVolume(o)
	case *corev1.PersistentVolumeClaim:
		return ValidatePersistentVolumeClaim(o)
	case *appsv1.Deployment:
		return ValidateDeployment(o)
	case *appsv1.ReplicaSet:
		return ValidateReplicaSet(o)
	case *appsv1.DaemonSet:
		return ValidateDaemonSet(o)
	case *appsv1.StatefulSet:
		return ValidateStatefulSet(o)
	case *appsv1.ControllerRevision:
		return ValidateControllerRevision(o)
	case *batchv1.Job:
		return ValidateJob(o)
	case *batchv1.CronJob:
		return ValidateCronJob(o)
	case *discoveryv1.EndpointSlice:
		return ValidateEndpointSlice(o)
	case *coordinationv1.Lease:
		return ValidateLease(o)
	case *autoscalingv2.HorizontalPodAutoscaler:
		return ValidateHorizontalPodAutoscaler(o)
	case *nodev1.RuntimeClass:
		return ValidateRuntimeClass(o)
	case *networkingv1.NetworkPolicy:
		return ValidateNetworkPolicy(o)
	case *eventsv1.Event:
		return ValidateEventsEvent(o)
	case *storagev1.StorageClass:
		return ValidateStorageClass(o)
	}
	return nil
}

// ValidateUpdate returns every problem with an update of old to obj: the
// immutable-field and transition rules first, then the object's own
// validation. If old is not of obj's type, obj is validated as new.
func ValidateUpdate(obj, old runtime.Object) field.ErrorList {
	switch o := obj.(type) {
	case *corev1.Namespace:
		if p, ok := old.(*corev1.Namespace); ok {
			return ValidateNamespaceUpdate(o, p)
		}
	case *corev1.Pod:
		if p, ok := old.(*corev1.Pod); ok {
			return ValidatePodUpdate(o, p)
		}
	case *corev1.Service:
		if p, ok := old.(*corev1.Service); ok {
			return ValidateServiceUpdate(o, p)
		}
	case *corev1.Endpoints:
		if p, ok := old.(*corev1.Endpoints); ok {
			return ValidateEndpointsUpdate(o, p)
		}
	case *corev1.Node:
		if p, ok := old.(*corev1.Node); ok {
			return ValidateNodeUpdate(o, p)
		}
	case *corev1.ConfigMap:
		if p, ok := old.(*corev1.ConfigMap); ok {
			return ValidateConfigMapUpdate(o, p)
		}
	case *corev1.Secret:
		if p, ok := old.(*corev1.Secret); ok {
			return ValidateSecretUpdate(o, p)
		}
	case *corev1.Event:
		if p, ok := old.(*corev1.Event); ok {
			return ValidateEventUpdate(o, p)
		}
	case *corev1.ServiceAccount:
		if p, ok := old.(*corev1.ServiceAccount); ok {
			return ValidateServiceAccountUpdate(o, p)
		}
	case *corev1.PersistentVolume:
		if p, ok := old.(*corev1.PersistentVolume); ok {
			return ValidatePersistentVolumeUpdate(o, p)
		}
	case *corev1.PersistentVolumeClaim:
		if p, ok := old.(*corev1.PersistentVolumeClaim); ok {
			return ValidatePersistentVolumeClaimUpdate(o, p)
		}
	case *appsv1.Deployment:
		if p, ok := old.(*appsv1.Deployment); ok {
			return ValidateDeploymentUpdate(o, p)
		}
	case *appsv1.ReplicaSet:
		if p, ok := old.(*appsv1.ReplicaSet); ok {
			return ValidateReplicaSetUpdate(o, p)
		}
	case *appsv1.DaemonSet:
		if p, ok := old.(*appsv1.DaemonSet); ok {
			return ValidateDaemonSetUpdate(o, p)
		}
	case *appsv1.StatefulSet:
		if p, ok := old.(*appsv1.StatefulSet); ok {
			return ValidateStatefulSetUpdate(o, p)
		}
	case *appsv1.ControllerRevision:
		if p, ok := old.(*appsv1.ControllerRevision); ok {
			return ValidateControllerRevisionUpdate(o, p)
		}
	case *batchv1.Job:
		if p, ok := old.(*batchv1.Job); ok {
			return ValidateJobUpdate(o, p)
		}
	case *batchv1.CronJob:
		if p, ok := old.(*batchv1.CronJob); ok {
			return ValidateCronJobUpdate(o, p)
		}
	case *discoveryv1.EndpointSlice:
		if p, ok := old.(*discoveryv1.EndpointSlice); ok {
			return ValidateEndpointSliceUpdate(o, p)
		}
	case *coordinationv1.Lease:
		if p, ok := old.(*coordinationv1.Lease); ok {
			return ValidateLeaseUpdate(o, p)
		}
	case *autoscalingv2.HorizontalPodAutoscaler:
		if p, ok := old.(*autoscalingv2.HorizontalPodAutoscaler); ok {
			return ValidateHorizontalPodAutoscalerUpdate(o, p)
		}
	case *nodev1.RuntimeClass:
		if p, ok := old.(*nodev1.RuntimeClass); ok {
			return ValidateRuntimeClassUpdate(o, p)
		}
	case *networkingv1.NetworkPolicy:
		if p, ok := old.(*networkingv1.NetworkPolicy); ok {
			return ValidateNetworkPolicyUpdate(o, p)
		}
	case *eventsv1.Event:
		if p, ok := old.(*eventsv1.Event); ok {
			return ValidateEventsEventUpdate(o, p)
		}
	case *storagev1.StorageClass:
		if p, ok := old.(*storagev1.StorageClass); ok {
			return ValidateStorageClassUpdate(o, p)
		}
	default:
		return nil
	}
	return Validate(obj)
}
