package endpoints

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func pod(i int, ready bool, port int32) *corev1.Pod {
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("p%d", i), Namespace: "default", UID: types.UID(fmt.Sprint(i))},
		Spec: corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{
			Name: "c", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: port, Protocol: corev1.ProtocolTCP}},
		}}},
		Status: corev1.PodStatus{
			Phase: corev1.PodRunning, PodIP: fmt.Sprintf("10.0.%d.%d", i/200, i%200+1),
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: status}},
		},
	}
}

func TestSubsets(t *testing.T) {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{
			Name: "http", Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromString("http"),
		}}},
	}
	terminating := pod(4, true, 8080)
	terminating.DeletionTimestamp = &metav1.Time{}
	finished := pod(5, true, 8080)
	finished.Status.Phase = corev1.PodSucceeded
	noPort := pod(6, true, 8080)
	noPort.Spec.Containers[0].Ports[0].Name = "other"
	pods := []*corev1.Pod{pod(2, true, 8080), pod(1, false, 8080), pod(3, true, 9090), terminating, finished, noPort}

	subsets, total := Subsets(svc, pods)
	if total != 3 || len(subsets) != 2 {
		t.Fatalf("total=%d subsets=%+v, want 3 addresses in 2 subsets", total, subsets)
	}
	byPort := map[int32]corev1.EndpointSubset{}
	for _, ss := range subsets {
		byPort[ss.Ports[0].Port] = ss
	}
	s8080 := byPort[8080]
	if len(s8080.Addresses) != 1 || s8080.Addresses[0].TargetRef.Name != "p2" ||
		len(s8080.NotReadyAddresses) != 1 || s8080.NotReadyAddresses[0].TargetRef.Name != "p1" {
		t.Errorf("8080 subset = %+v, want p2 ready and p1 not ready", s8080)
	}
	if s := byPort[9090]; len(s.Addresses) != 1 || s.Addresses[0].TargetRef.Name != "p3" || s.Ports[0].Name != "http" {
		t.Errorf("9090 subset = %+v, want p3 on http", s)
	}

	// publishNotReadyAddresses: not-ready and terminating pods are addresses.
	svc.Spec.PublishNotReadyAddresses = true
	subsets, _ = Subsets(svc, pods)
	for _, ss := range subsets {
		if len(ss.NotReadyAddresses) != 0 {
			t.Errorf("publishNotReadyAddresses left not-ready addresses: %+v", ss)
		}
	}
	if n := len(subsets[0].Addresses) + len(subsets[1].Addresses); n != 4 {
		t.Errorf("publishNotReadyAddresses: %d addresses, want 4 (terminating included)", n)
	}
	svc.Spec.PublishNotReadyAddresses = false

	// Truncation at MaxCapacity.
	var many []*corev1.Pod
	for i := range MaxCapacity + 5 {
		many = append(many, pod(i, true, 8080))
	}
	subsets, total = Subsets(svc, many)
	if total != MaxCapacity+5 || len(subsets) != 1 || len(subsets[0].Addresses) != MaxCapacity {
		t.Errorf("truncation: total=%d kept=%d, want %d and %d", total, len(subsets[0].Addresses), MaxCapacity+5, MaxCapacity)
	}
}
