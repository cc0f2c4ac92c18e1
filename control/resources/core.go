package resources

import (
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/wasmkube/wasmkube/control/registry"
)

var coreV1 = corev1.SchemeGroupVersion

func core(deps Deps) []*registry.Strategy {
	return []*registry.Strategy{
		define(coreV1, "Namespace", "namespaces", false,
			func() runtime.Object { return &corev1.Namespace{} },
			func() runtime.Object { return &corev1.NamespaceList{} },
			short("ns"), withStatus, namespaceLifecycle,
			fieldLabels(func(o runtime.Object) fields.Set {
				return fields.Set{"status.phase": string(o.(*corev1.Namespace).Status.Phase)}
			}, "status.phase")),
		pods(deps.Kubelet),
		define(coreV1, "Service", "services", true,
			func() runtime.Object { return &corev1.Service{} },
			func() runtime.Object { return &corev1.ServiceList{} },
			short("svc"), inAll, withStatus, resetStatus, serviceAllocation(deps.Services)),
		define(coreV1, "Endpoints", "endpoints", true,
			func() runtime.Object { return &corev1.Endpoints{} },
			func() runtime.Object { return &corev1.EndpointsList{} },
			short("ep")),
		define(coreV1, "Node", "nodes", false,
			func() runtime.Object { return &corev1.Node{} },
			func() runtime.Object { return &corev1.NodeList{} },
			short("no"), withStatus,
			fieldLabels(func(o runtime.Object) fields.Set {
				return fields.Set{"spec.unschedulable": fmt.Sprint(o.(*corev1.Node).Spec.Unschedulable)}
			}, "spec.unschedulable")),
		define(coreV1, "ConfigMap", "configmaps", true,
			func() runtime.Object { return &corev1.ConfigMap{} },
			func() runtime.Object { return &corev1.ConfigMapList{} },
			short("cm")),
		define(coreV1, "Secret", "secrets", true,
			func() runtime.Object { return &corev1.Secret{} },
			func() runtime.Object { return &corev1.SecretList{} },
			fieldLabels(func(o runtime.Object) fields.Set {
				return fields.Set{"type": string(o.(*corev1.Secret).Type)}
			}, "type"), mergeStringData),
		define(coreV1, "Event", "events", true,
			func() runtime.Object { return &corev1.Event{} },
			func() runtime.Object { return &corev1.EventList{} },
			short("ev"), fieldLabels(eventFields, eventFieldLabels...)),
		define(coreV1, "ServiceAccount", "serviceaccounts", true,
			func() runtime.Object { return &corev1.ServiceAccount{} },
			func() runtime.Object { return &corev1.ServiceAccountList{} },
			short("sa")),
		define(coreV1, "PersistentVolume", "persistentvolumes", false,
			func() runtime.Object { return &corev1.PersistentVolume{} },
			func() runtime.Object { return &corev1.PersistentVolumeList{} },
			short("pv"), withStatus, pendingOnCreate, resetStatus),
		define(coreV1, "PersistentVolumeClaim", "persistentvolumeclaims", true,
			func() runtime.Object { return &corev1.PersistentVolumeClaim{} },
			func() runtime.Object { return &corev1.PersistentVolumeClaimList{} },
			short("pvc"), withStatus, pendingOnCreate, resetStatus, defaultStorageClass(deps.StorageClasses)),
	}
}

// mergeStringData folds a Secret's write-only stringData into data, its
// values winning, as upstream's conversion does: stringData is never
// stored or returned.
func mergeStringData(s *registry.Strategy) {
	merge := func(obj runtime.Object) {
		sec := obj.(*corev1.Secret)
		if len(sec.StringData) == 0 {
			sec.StringData = nil
			return
		}
		if sec.Data == nil {
			sec.Data = map[string][]byte{}
		}
		for k, v := range sec.StringData {
			sec.Data[k] = []byte(v)
		}
		sec.StringData = nil
	}
	s.PrepareForCreate = merge
	s.PrepareForUpdate = func(obj, _ runtime.Object) { merge(obj) }
}

// namespaceLifecycle gives namespaces upstream's life: Active with the
// "kubernetes" finalizer on create, Terminating on delete until the namespace
// controller has emptied it and removed the finalizer.
func namespaceLifecycle(s *registry.Strategy) {
	s.PrepareForCreate = func(obj runtime.Object) {
		ns := obj.(*corev1.Namespace)
		ns.Status = corev1.NamespaceStatus{Phase: corev1.NamespaceActive}
		if !slices.Contains(ns.Spec.Finalizers, corev1.FinalizerKubernetes) {
			ns.Spec.Finalizers = append(ns.Spec.Finalizers, corev1.FinalizerKubernetes)
		}
	}
	s.Finalized = func(obj runtime.Object) bool { return len(obj.(*corev1.Namespace).Spec.Finalizers) == 0 }
	s.Subresources = []registry.Subresource{{
		Name:  "finalize",
		Kind:  coreV1.WithKind("Namespace"),
		Verbs: []string{"update"},
		New:   func() runtime.Object { return &corev1.Namespace{} },
		Update: func(parent, body runtime.Object) (runtime.Object, error) {
			ns := parent.(*corev1.Namespace)
			ns.Spec.Finalizers = body.(*corev1.Namespace).Spec.Finalizers
			return ns, nil
		},
		Result: func(parent, _ runtime.Object) runtime.Object { return parent },
	}}
	s.BeforeDelete = func(obj runtime.Object) (runtime.Object, bool) {
		ns := obj.(*corev1.Namespace)
		if len(ns.Spec.Finalizers) == 0 {
			return obj, false
		}
		ns.Status.Phase = corev1.NamespaceTerminating
		return obj, true
	}
}

var podFieldLabels = []string{
	"spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
	"spec.hostNetwork", "status.phase", "status.podIP", "status.podIPs", "status.nominatedNodeName",
}

func podFields(o runtime.Object) fields.Set {
	p := o.(*corev1.Pod)
	return fields.Set{
		"spec.nodeName":            p.Spec.NodeName,
		"spec.restartPolicy":       string(p.Spec.RestartPolicy),
		"spec.schedulerName":       p.Spec.SchedulerName,
		"spec.serviceAccountName":  p.Spec.ServiceAccountName,
		"spec.hostNetwork":         fmt.Sprint(p.Spec.HostNetwork),
		"status.phase":             string(p.Status.Phase),
		"status.podIP":             p.Status.PodIP,
		"status.podIPs":            p.Status.PodIP,
		"status.nominatedNodeName": p.Status.NominatedNodeName,
	}
}

func pods(kubelet *Kubelet) *registry.Strategy {
	return define(coreV1, "Pod", "pods", true,
		func() runtime.Object { return &corev1.Pod{} },
		func() runtime.Object { return &corev1.PodList{} },
		short("po"), inAll, withStatus, withGeneration,
		fieldLabels(podFields, podFieldLabels...),
		func(s *registry.Strategy) {
			s.PrepareForCreate = func(obj runtime.Object) {
				p := obj.(*corev1.Pod)
				p.Status = corev1.PodStatus{Phase: corev1.PodPending, QOSClass: qosClass(&p.Spec)}
			}
			s.GracePeriod = podGracePeriod
			s.Subresources = []registry.Subresource{{
				Name:   "binding",
				Kind:   coreV1.WithKind("Binding"),
				Verbs:  []string{"create"},
				New:    func() runtime.Object { return &corev1.Binding{} },
				Create: bindPod,
			}}
		}, podStreams(kubelet))
}

// podGracePeriod follows upstream: a pod no agent runs (unbound, or finished)
// goes at once; a running one gets its grace period to stop.
func podGracePeriod(obj runtime.Object, opts *metav1.DeleteOptions) (int64, bool) {
	p := obj.(*corev1.Pod)
	if p.Spec.NodeName == "" || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
		return 0, false
	}
	grace := int64(corev1.DefaultTerminationGracePeriodSeconds)
	if p.Spec.TerminationGracePeriodSeconds != nil {
		grace = *p.Spec.TerminationGracePeriodSeconds
	}
	if opts.GracePeriodSeconds != nil {
		grace = *opts.GracePeriodSeconds
	}
	return grace, true
}

// bindPod records the scheduler's decision; a pod is bound once only.
func bindPod(parent, body runtime.Object) (runtime.Object, error) {
	p := parent.(*corev1.Pod)
	b := body.(*corev1.Binding)
	if b.Target.Kind != "" && b.Target.Kind != "Node" {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("binding target must be a Node, not %q", b.Target.Kind))
	}
	if b.Target.Name == "" {
		return nil, apierrors.NewBadRequest("binding target name is required")
	}
	if p.DeletionTimestamp != nil {
		return nil, apierrors.NewConflict(corev1.Resource("pods/binding"), p.Name, fmt.Errorf("pod %s is being deleted, cannot be assigned to a host", p.Name))
	}
	if p.Spec.NodeName != "" {
		return nil, apierrors.NewConflict(corev1.Resource("pods/binding"), p.Name, fmt.Errorf("pod %s is already assigned to node %q", p.Name, p.Spec.NodeName))
	}
	p.Spec.NodeName = b.Target.Name
	setPodScheduled(p)
	for k, v := range b.Annotations {
		if p.Annotations == nil {
			p.Annotations = map[string]string{}
		}
		p.Annotations[k] = v
	}
	return p, nil
}

var eventFieldLabels = []string{
	"involvedObject.kind", "involvedObject.namespace", "involvedObject.name", "involvedObject.uid",
	"involvedObject.apiVersion", "involvedObject.resourceVersion", "involvedObject.fieldPath",
	"reason", "reportingComponent", "source", "type",
}

func eventFields(o runtime.Object) fields.Set {
	e := o.(*corev1.Event)
	return fields.Set{
		"involvedObject.kind":            e.InvolvedObject.Kind,
		"involvedObject.namespace":       e.InvolvedObject.Namespace,
		"involvedObject.name":            e.InvolvedObject.Name,
		"involvedObject.uid":             string(e.InvolvedObject.UID),
		"involvedObject.apiVersion":      e.InvolvedObject.APIVersion,
		"involvedObject.resourceVersion": e.InvolvedObject.ResourceVersion,
		"involvedObject.fieldPath":       e.InvolvedObject.FieldPath,
		"reason":                         e.Reason,
		"reportingComponent":             e.ReportingController,
		"source":                         e.Source.Component,
		"type":                           e.Type,
	}
}

// setPodScheduled records PodScheduled=True on binding, as upstream's
// binding does, replacing an earlier Unschedulable verdict.
func setPodScheduled(p *corev1.Pod) {
	cond := corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()}
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == corev1.PodScheduled {
			p.Status.Conditions[i] = cond
			return
		}
	}
	p.Status.Conditions = append(p.Status.Conditions, cond)
}
