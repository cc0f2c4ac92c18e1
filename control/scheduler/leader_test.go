package scheduler

import (
	"context"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"
)

// electedScheduler starts a scheduler with leader election and its own
// informers, as a second API server's scheduler would have.
func electedScheduler(t *testing.T, cs kubernetes.Interface, identity string) (stop func(), done <-chan error) {
	t.Helper()
	broadcaster := record.NewBroadcaster()
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: cs.CoreV1().Events("")})
	t.Cleanup(broadcaster.Shutdown)
	recorder := broadcaster.NewRecorder(scheme.Scheme, v1.EventSource{Component: v1.DefaultSchedulerName})
	factory := informers.NewSharedInformerFactory(cs, 0)
	s, err := New(cs, factory, recorder, Options{
		LeaderElection: true, Identity: identity,
		LeaseDuration: 3 * time.Second, RenewDeadline: 2 * time.Second, RetryPeriod: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan error, 1)
	go func() { ch <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		factory.Shutdown()
	})
	return cancel, ch
}

func leaseHolder(ctx context.Context, cs kubernetes.Interface) string {
	l, err := cs.CoordinationV1().Leases("kube-system").Get(ctx, "kube-scheduler", metav1.GetOptions{})
	if err != nil || l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

func TestIntegrationLeaderElection(t *testing.T) {
	cs := startServer(t)
	ctx := testCtx(t)
	createNode(t, ctx, cs, nodeSpec{name: "n", cpu: "4", mem: "8Gi", pods: 110})
	stopA, doneA := electedScheduler(t, cs, "sched-a")
	waitFor(t, "sched-a to lead", 10*time.Second, func() (bool, error) { return leaseHolder(ctx, cs) == "sched-a", nil })
	_, _ = electedScheduler(t, cs, "sched-b")

	createPod(t, ctx, cs, "one", "100m")
	waitBound(t, ctx, cs, "one", 10*time.Second)
	if h := leaseHolder(ctx, cs); h != "sched-a" {
		t.Fatalf("lease holder = %q while sched-a runs", h)
	}

	stopA()
	select {
	case err := <-doneA:
		if err != nil {
			t.Errorf("sched-a stopped with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("sched-a did not stop")
	}
	waitFor(t, "sched-b to take over", 15*time.Second, func() (bool, error) { return leaseHolder(ctx, cs) == "sched-b", nil })
	createPod(t, ctx, cs, "two", "100m")
	waitBound(t, ctx, cs, "two", 10*time.Second)
}
