package endpointslice

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func testService() *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", UID: "svc-uid"},
		Spec: corev1.ServiceSpec{
			Selector:   map[string]string{"app": "web"},
			ClusterIP:  "10.96.0.10",
			IPFamilies: []corev1.IPFamily{corev1.IPv4Protocol},
			Ports:      []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromString("http")}},
		},
	}
}

func testPod(i int, port int32) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("p%d", i), Namespace: "default", UID: types.UID(fmt.Sprintf("uid-%d", i)), Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{
			Name: "c", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: port, Protocol: corev1.ProtocolTCP}},
		}}},
		Status: corev1.PodStatus{
			Phase: corev1.PodRunning, PodIP: fmt.Sprintf("10.244.%d.%d", i/250, i%250+1),
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}},
		},
	}
}

// applyPlan plays the API server: creates get names and join the existing
// slices, updates replace, deletes remove.
func applyPlan(existing []*discoveryv1.EndpointSlice, p plan, next *int) []*discoveryv1.EndpointSlice {
	byName := map[string]*discoveryv1.EndpointSlice{}
	var order []string
	for _, s := range existing {
		byName[s.Name] = s
		order = append(order, s.Name)
	}
	for _, s := range p.update {
		byName[s.Name] = s
	}
	for _, s := range p.del {
		delete(byName, s.Name)
	}
	for _, s := range p.create {
		*next++
		s = s.DeepCopy()
		s.Name = fmt.Sprintf("web-%d", *next)
		byName[s.Name] = s
		order = append(order, s.Name)
	}
	var out []*discoveryv1.EndpointSlice
	for _, n := range order {
		if s, ok := byName[n]; ok {
			out = append(out, s)
		}
	}
	return out
}

func TestReconcileSplitsAtLimitAndTouchesOnlyChangedSlices(t *testing.T) {
	svc := testService()
	var pods []*corev1.Pod
	for i := range 250 {
		pods = append(pods, testPod(i, 8080))
	}
	zone := func(string) string { return "" }
	at := discoveryv1.AddressTypeIPv4
	next := 0

	p := reconcile(svc, at, desiredGroups(svc, pods, zone, at), nil)
	if len(p.create) != 3 || len(p.update) != 0 || len(p.del) != 0 {
		t.Fatalf("first plan: create=%d update=%d delete=%d, want 3/0/0", len(p.create), len(p.update), len(p.del))
	}
	slices := applyPlan(nil, p, &next)
	total := 0
	for _, s := range slices {
		if len(s.Endpoints) > MaxEndpointsPerSlice {
			t.Errorf("slice %s has %d endpoints, limit %d", s.Name, len(s.Endpoints), MaxEndpointsPerSlice)
		}
		if len(s.Ports) != 1 || *s.Ports[0].Port != 8080 || *s.Ports[0].Name != "http" {
			t.Errorf("slice %s ports = %+v, want http/8080", s.Name, s.Ports)
		}
		total += len(s.Endpoints)
	}
	if total != 250 {
		t.Fatalf("endpoints in slices = %d, want 250", total)
	}

	// Nothing changed: nothing to write.
	p = reconcile(svc, at, desiredGroups(svc, pods, zone, at), slices)
	if len(p.create)+len(p.update)+len(p.del) != 0 {
		t.Fatalf("unchanged input planned writes: create=%d update=%d delete=%d", len(p.create), len(p.update), len(p.del))
	}

	// One pod turns not ready: exactly one slice is rewritten.
	pods[7].Status.Conditions[0].Status = corev1.ConditionFalse
	p = reconcile(svc, at, desiredGroups(svc, pods, zone, at), slices)
	if len(p.create) != 0 || len(p.update) != 1 || len(p.del) != 0 {
		t.Fatalf("one pod changed: create=%d update=%d delete=%d, want 0/1/0", len(p.create), len(p.update), len(p.del))
	}
	slices = applyPlan(slices, p, &next)

	// A pod resolving its named port differently gets its own slice.
	odd := testPod(900, 9090)
	pods = append(pods, odd)
	p = reconcile(svc, at, desiredGroups(svc, pods, zone, at), slices)
	if len(p.create) != 1 || len(p.update) != 0 || len(p.del) != 0 {
		t.Fatalf("new port group: create=%d update=%d delete=%d, want 1/0/0", len(p.create), len(p.update), len(p.del))
	}
	if got := *p.create[0].Ports[0].Port; got != 9090 || len(p.create[0].Endpoints) != 1 {
		t.Errorf("new slice port %d with %d endpoints, want 9090 with 1", got, len(p.create[0].Endpoints))
	}
	slices = applyPlan(slices, p, &next)

	// All pods gone: one empty placeholder remains, reusing a slice.
	p = reconcile(svc, at, desiredGroups(svc, nil, zone, at), slices)
	if len(p.create) != 0 || len(p.update) != 1 || len(p.del) != 3 {
		t.Fatalf("no pods: create=%d update=%d delete=%d, want 0/1/3", len(p.create), len(p.update), len(p.del))
	}
	if len(p.update[0].Endpoints) != 0 || len(p.update[0].Ports) != 0 {
		t.Errorf("placeholder has %d endpoints and %d ports, want none", len(p.update[0].Endpoints), len(p.update[0].Ports))
	}
}

func TestEndpointConditions(t *testing.T) {
	svc := testService()
	pod := testPod(1, 8080)
	now := metav1.Now()
	cases := []struct {
		name                         string
		ready, terminating, publish  bool
		wantReady, wantServing, wTrm bool
	}{
		{"ready", true, false, false, true, true, false},
		{"not ready", false, false, false, false, false, false},
		{"terminating ready", true, true, false, false, true, true},
		{"terminating not ready", false, true, false, false, false, true},
		{"publish not ready", false, false, true, true, false, false},
	}
	for _, tc := range cases {
		p, s := pod.DeepCopy(), svc.DeepCopy()
		if !tc.ready {
			p.Status.Conditions[0].Status = corev1.ConditionFalse
		}
		if tc.terminating {
			p.DeletionTimestamp = &now
		}
		s.Spec.PublishNotReadyAddresses = tc.publish
		ep := podToEndpoint(p, s, []string{"10.0.0.1"}, "")
		if *ep.Conditions.Ready != tc.wantReady || *ep.Conditions.Serving != tc.wantServing || *ep.Conditions.Terminating != tc.wTrm {
			t.Errorf("%s: ready=%v serving=%v terminating=%v, want %v/%v/%v", tc.name,
				*ep.Conditions.Ready, *ep.Conditions.Serving, *ep.Conditions.Terminating, tc.wantReady, tc.wantServing, tc.wTrm)
		}
	}
}
