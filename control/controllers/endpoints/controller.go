package endpoints

import (
	"context"
	"fmt"
	"net/netip"
	"sort"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/wasmkube/wasmkube/control/controllers/endpointslice"
	"github.com/wasmkube/wasmkube/control/controllers/framework"
)

// Name is the controller's name; the event source is upstream's.
const Name = "endpoint-controller"

// MaxCapacity is the most addresses one Endpoints object holds.
const MaxCapacity = 1000

// Annotation values upstream sets on a truncated object.
const (
	overCapacityAnnotation = "endpoints.kubernetes.io/over-capacity"
	truncated              = "truncated"
)

type controller struct {
	client    kubernetes.Interface
	services  corelisters.ServiceLister
	pods      corelisters.PodLister
	endpoints corelisters.EndpointsLister
	ctrl      *framework.Controller
	recorder  record.EventRecorder
}

// Starter runs the Endpoints controller with five workers.
func Starter() framework.Starter {
	return func(cc *framework.Context) (func(context.Context) error, error) {
		svcInf := cc.Informers.Core().V1().Services()
		podInf := cc.Informers.Core().V1().Pods()
		epInf := cc.Informers.Core().V1().Endpoints()
		c := &controller{
			client: cc.Client, services: svcInf.Lister(), pods: podInf.Lister(),
			endpoints: epInf.Lister(), recorder: cc.Recorder(Name),
		}
		c.ctrl = framework.New(Name, c.sync)
		if _, err := svcInf.Informer().AddEventHandler(c.ctrl.Handler()); err != nil {
			return nil, fmt.Errorf("service handler: %w", err)
		}
		if _, err := podInf.Informer().AddEventHandler(endpointslice.PodHandler(c.services, c.ctrl.EnqueueKey)); err != nil {
			return nil, fmt.Errorf("pod handler: %w", err)
		}
		// A deleted or hand-edited Endpoints object of a selector Service
		// is put back.
		if _, err := epInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
			UpdateFunc: func(_, obj any) { c.ctrl.Enqueue(obj) },
			DeleteFunc: c.ctrl.Enqueue,
		}); err != nil {
			return nil, fmt.Errorf("endpoints handler: %w", err)
		}
		return func(ctx context.Context) error {
			return c.ctrl.Run(ctx, 5, svcInf.Informer().HasSynced, podInf.Informer().HasSynced, epInf.Informer().HasSynced)
		}, nil
	}
}

func (c *controller) sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return fmt.Errorf("service key %q: %w", key, err)
	}
	svc, err := c.services.Services(ns).Get(name)
	if apierrors.IsNotFound(err) {
		// As upstream: the Endpoints object lives and dies with its Service.
		err := c.client.CoreV1().Endpoints(ns).Delete(ctx, name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("deleting endpoints %s: %w", key, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("service %s: %w", key, err)
	}
	if svc.Spec.Selector == nil || svc.Spec.Type == corev1.ServiceTypeExternalName {
		// Endpoints of a selector-less Service are written by its user.
		return nil
	}
	pods, err := c.pods.Pods(ns).List(labels.SelectorFromValidatedSet(svc.Spec.Selector))
	if err != nil {
		return fmt.Errorf("listing pods of %s: %w", key, err)
	}
	subsets, total := Subsets(svc, pods)

	cur, err := c.endpoints.Endpoints(ns).Get(name)
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("endpoints %s: %w", key, err)
	}
	create := cur == nil
	want := &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
	if !create {
		want = cur.DeepCopy()
	}
	want.Subsets = subsets
	want.Labels = endpointsLabels(svc)
	if total > MaxCapacity {
		if want.Annotations == nil {
			want.Annotations = map[string]string{}
		}
		want.Annotations[overCapacityAnnotation] = truncated
	} else {
		delete(want.Annotations, overCapacityAnnotation)
	}
	if !create && apiequality.Semantic.DeepEqual(cur.Subsets, want.Subsets) &&
		apiequality.Semantic.DeepEqual(cur.Labels, want.Labels) &&
		apiequality.Semantic.DeepEqual(cur.Annotations, want.Annotations) {
		return nil
	}
	if create {
		_, err = c.client.CoreV1().Endpoints(ns).Create(ctx, want, metav1.CreateOptions{})
	} else {
		_, err = c.client.CoreV1().Endpoints(ns).Update(ctx, want, metav1.UpdateOptions{})
	}
	if err != nil {
		if create && apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
			return nil
		}
		c.recorder.Eventf(svc, corev1.EventTypeWarning, "FailedToUpdateEndpoint",
			"Failed to update endpoint %s: %v", key, err)
		return fmt.Errorf("writing endpoints %s: %w", key, err)
	}
	return nil
}

// endpointsLabels are the Service's labels, the headless marker and the
// skip-mirror label upstream sets on controller-written Endpoints.
func endpointsLabels(svc *corev1.Service) map[string]string {
	out := map[string]string{}
	for k, v := range svc.Labels {
		out[k] = v
	}
	if svc.Spec.ClusterIP == corev1.ClusterIPNone {
		out[corev1.IsHeadlessService] = ""
	} else {
		delete(out, corev1.IsHeadlessService)
	}
	out[discoveryv1.LabelSkipMirror] = "true"
	return out
}

// Subsets computes the Endpoints subsets of svc over pods, packed as
// upstream packs them (one subset per distinct resolved port list,
// addresses sorted), and the number of addresses before truncation.
func Subsets(svc *corev1.Service, pods []*corev1.Pod) ([]corev1.EndpointSubset, int) {
	tolerateUnready := svc.Spec.PublishNotReadyAddresses
	type acc struct {
		ports           []corev1.EndpointPort
		ready, notReady map[string]corev1.EndpointAddress
	}
	groups := map[string]*acc{}
	headless := svc.Spec.ClusterIP == corev1.ClusterIPNone
	for _, pod := range pods {
		if !endpointslice.ShouldPodBeInEndpoints(pod, tolerateUnready) {
			continue
		}
		eps := endpointslice.EndpointPorts(svc, pod)
		if len(eps) == 0 && !(headless && len(svc.Spec.Ports) == 0) {
			continue // none of the Service's ports exist on this pod
		}
		key := endpointslice.PortsKey(eps)
		g := groups[key]
		if g == nil {
			g = &acc{ports: corePorts(eps), ready: map[string]corev1.EndpointAddress{}, notReady: map[string]corev1.EndpointAddress{}}
			groups[key] = g
		}
		for _, ip := range podIPs(pod) {
			addr := corev1.EndpointAddress{
				IP: ip,
				TargetRef: &corev1.ObjectReference{
					Kind: "Pod", Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID,
				},
			}
			if pod.Spec.NodeName != "" {
				addr.NodeName = &pod.Spec.NodeName
			}
			if endpointslice.ShouldSetHostname(pod, svc) {
				addr.Hostname = pod.Spec.Hostname
			}
			if tolerateUnready || endpointslice.IsPodReady(pod) {
				g.ready[ip] = addr
				delete(g.notReady, ip)
			} else if _, isReady := g.ready[ip]; !isReady {
				g.notReady[ip] = addr
			}
		}
	}
	keys := make([]string, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := []corev1.EndpointSubset{}
	total, budget := 0, MaxCapacity
	for _, k := range keys {
		g := groups[k]
		ready, notReady := sortedAddrs(g.ready), sortedAddrs(g.notReady)
		total += len(ready) + len(notReady)
		if len(ready) > budget {
			ready = ready[:budget]
		}
		budget -= len(ready)
		if len(notReady) > budget {
			notReady = notReady[:budget]
		}
		budget -= len(notReady)
		if len(ready)+len(notReady) == 0 {
			continue
		}
		out = append(out, corev1.EndpointSubset{Addresses: ready, NotReadyAddresses: notReady, Ports: g.ports})
	}
	return out, total
}

// podIPs are the pod's IPs; Endpoints mix families, unlike slices.
func podIPs(pod *corev1.Pod) []string {
	v4 := endpointslice.PodAddresses(pod, discoveryv1.AddressTypeIPv4)
	return append(v4, endpointslice.PodAddresses(pod, discoveryv1.AddressTypeIPv6)...)
}

func corePorts(eps []discoveryv1.EndpointPort) []corev1.EndpointPort {
	if len(eps) == 0 {
		return nil
	}
	out := make([]corev1.EndpointPort, 0, len(eps))
	for _, p := range eps {
		out = append(out, corev1.EndpointPort{Name: *p.Name, Port: *p.Port, Protocol: *p.Protocol, AppProtocol: p.AppProtocol})
	}
	return out
}

func sortedAddrs(m map[string]corev1.EndpointAddress) []corev1.EndpointAddress {
	if len(m) == 0 {
		return nil
	}
	out := make([]corev1.EndpointAddress, 0, len(m))
	for _, a := range m {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool {
		a, errA := netip.ParseAddr(out[i].IP)
		b, errB := netip.ParseAddr(out[j].IP)
		if errA == nil && errB == nil && a != b {
			return a.Less(b)
		}
		return out[i].IP < out[j].IP
	})
	return out
}
