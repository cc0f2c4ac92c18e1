package agent

import (
	"context"
	"errors"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// An unreachable API server leaves the last objects in use; its answers
// (NotFound) replace them.
func TestObjectsKeepLastWhileUnreachable(t *testing.T) {
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "c", Namespace: "ns"}, Data: map[string]string{"k": "v"}}
	client := fake.NewClientset(cm)
	now := time.Unix(1000, 0)
	o := newObjects(client, 5*time.Second)
	o.now = func() time.Time { return now }
	ctx := context.Background()
	if got, err := o.ConfigMap(ctx, "ns", "c"); err != nil || got.Data["k"] != "v" {
		t.Fatalf("first read: %v, %v", got, err)
	}
	var fail error = errors.New("dial tcp: connection refused")
	client.PrependReactor("*", "*", func(k8stesting.Action) (bool, runtime.Object, error) { return fail != nil, nil, fail })
	for _, d := range []time.Duration{10 * time.Second, 10 * time.Minute} {
		now = now.Add(d)
		if got, err := o.ConfigMap(ctx, "ns", "c"); err != nil || got.Data["k"] != "v" {
			t.Fatalf("unreachable after %s: %v, %v", d, got, err)
		}
	}
	if svcs, err := o.Services(ctx, "ns"); err != nil || len(svcs) != 0 {
		t.Errorf("services never read, unreachable: %v, %v", svcs, err)
	}
	fail = apierrors.NewNotFound(corev1.Resource("configmaps"), "c")
	now = now.Add(10 * time.Second)
	if _, err := o.ConfigMap(ctx, "ns", "c"); !apierrors.IsNotFound(err) {
		t.Errorf("after the server answered NotFound: %v", err)
	}
}
