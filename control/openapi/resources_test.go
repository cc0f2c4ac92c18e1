package openapi

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
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// servedResources mirrors the resources the API server registers, so the
// tests exercise the same type graph as production.
func servedResources() []Resource {
	core := corev1.SchemeGroupVersion
	apps := appsv1.SchemeGroupVersion
	r := func(gv schema.GroupVersion, kind, plural string, namespaced bool, obj, list runtime.Object, subs ...string) Resource {
		return Resource{
			GVK: gv.WithKind(kind), Resource: plural, Namespaced: namespaced,
			New:          func() runtime.Object { return obj.DeepCopyObject() },
			NewList:      func() runtime.Object { return list.DeepCopyObject() },
			Subresources: subs,
		}
	}
	return []Resource{
		r(core, "Namespace", "namespaces", false, &corev1.Namespace{}, &corev1.NamespaceList{}, "status", "finalize"),
		r(core, "Service", "services", true, &corev1.Service{}, &corev1.ServiceList{}, "status"),
		r(core, "Endpoints", "endpoints", true, &corev1.Endpoints{}, &corev1.EndpointsList{}),
		r(core, "Node", "nodes", false, &corev1.Node{}, &corev1.NodeList{}, "status"),
		r(core, "ConfigMap", "configmaps", true, &corev1.ConfigMap{}, &corev1.ConfigMapList{}),
		r(core, "Secret", "secrets", true, &corev1.Secret{}, &corev1.SecretList{}),
		r(core, "Event", "events", true, &corev1.Event{}, &corev1.EventList{}),
		r(core, "ServiceAccount", "serviceaccounts", true, &corev1.ServiceAccount{}, &corev1.ServiceAccountList{}),
		r(core, "PersistentVolume", "persistentvolumes", false, &corev1.PersistentVolume{}, &corev1.PersistentVolumeList{}, "status"),
		r(core, "PersistentVolumeClaim", "persistentvolumeclaims", true, &corev1.PersistentVolumeClaim{}, &corev1.PersistentVolumeClaimList{}, "status"),
		r(core, "Pod", "pods", true, &corev1.Pod{}, &corev1.PodList{}, "status", "binding", "log"),
		r(apps, "Deployment", "deployments", true, &appsv1.Deployment{}, &appsv1.DeploymentList{}, "status", "scale"),
		r(apps, "ReplicaSet", "replicasets", true, &appsv1.ReplicaSet{}, &appsv1.ReplicaSetList{}, "status", "scale"),
		r(apps, "StatefulSet", "statefulsets", true, &appsv1.StatefulSet{}, &appsv1.StatefulSetList{}, "status", "scale"),
		r(apps, "DaemonSet", "daemonsets", true, &appsv1.DaemonSet{}, &appsv1.DaemonSetList{}, "status"),
		r(apps, "ControllerRevision", "controllerrevisions", true, &appsv1.ControllerRevision{}, &appsv1.ControllerRevisionList{}),
		r(batchv1.SchemeGroupVersion, "Job", "jobs", true, &batchv1.Job{}, &batchv1.JobList{}, "status"),
		r(batchv1.SchemeGroupVersion, "CronJob", "cronjobs", true, &batchv1.CronJob{}, &batchv1.CronJobList{}, "status"),
		r(discoveryv1.SchemeGroupVersion, "EndpointSlice", "endpointslices", true, &discoveryv1.EndpointSlice{}, &discoveryv1.EndpointSliceList{}),
		r(coordinationv1.SchemeGroupVersion, "Lease", "leases", true, &coordinationv1.Lease{}, &coordinationv1.LeaseList{}),
		r(autoscalingv2.SchemeGroupVersion, "HorizontalPodAutoscaler", "horizontalpodautoscalers", true, &autoscalingv2.HorizontalPodAutoscaler{}, &autoscalingv2.HorizontalPodAutoscalerList{}, "status"),
		r(nodev1.SchemeGroupVersion, "RuntimeClass", "runtimeclasses", false, &nodev1.RuntimeClass{}, &nodev1.RuntimeClassList{}),
		r(networkingv1.SchemeGroupVersion, "NetworkPolicy", "networkpolicies", true, &networkingv1.NetworkPolicy{}, &networkingv1.NetworkPolicyList{}),
		r(eventsv1.SchemeGroupVersion, "Event", "events", true, &eventsv1.Event{}, &eventsv1.EventList{}),
		r(storagev1.SchemeGroupVersion, "StorageClass", "storageclasses", false, &storagev1.StorageClass{}, &storagev1.StorageClassList{}),
	}
}
