package framework

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// Election names the Lease that several instances of a component compete
// for, so that only one acts while the others wait.
type Election struct {
	Namespace, Name string
	// Identity is this instance's name in the Lease; "" means
	// "<hostname>_<uuid>", as upstream components use.
	Identity string
	// Zero durations mean upstream's 15 s lease, 10 s renew deadline and
	// 2 s retry period.
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
}

func (e Election) withDefaults() Election {
	if e.Identity == "" {
		host, _ := os.Hostname()
		e.Identity = host + "_" + string(uuid.NewUUID())
	}
	if e.LeaseDuration == 0 {
		e.LeaseDuration = 15 * time.Second
	}
	if e.RenewDeadline == 0 {
		e.RenewDeadline = 10 * time.Second
	}
	if e.RetryPeriod == 0 {
		e.RetryPeriod = 2 * time.Second
	}
	return e
}

// RunElected calls run only while holding the Lease. It returns when ctx
// ends, or with an error when the lease is lost: like upstream components,
// the caller should then stop, since another instance may already be acting.
func RunElected(ctx context.Context, client kubernetes.Interface, e Election, run func(context.Context) error) error {
	e = e.withDefaults()
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: e.Namespace, Name: e.Name},
		Client:     client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: e.Identity},
	}
	// The callback hands over its context instead of running inside it, so
	// that RunElected can wait for run to finish.
	leading := make(chan context.Context, 1)
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		LeaseDuration:   e.LeaseDuration,
		RenewDeadline:   e.RenewDeadline,
		RetryPeriod:     e.RetryPeriod,
		ReleaseOnCancel: true,
		Name:            e.Name,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(ctx context.Context) { leading <- ctx },
			OnStoppedLeading: func() {},
		},
	})
	if err != nil {
		return fmt.Errorf("leader election for %s/%s: %w", e.Namespace, e.Name, err)
	}
	leCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		le.Run(leCtx)
	}()
	select {
	case <-done:
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("leader election for %s/%s ended without leading", e.Namespace, e.Name)
	case lctx := <-leading:
		slog.Info("became leader", "lease", e.Namespace+"/"+e.Name, "identity", e.Identity)
		runErr := run(lctx)
		cancel()
		<-done
		if ctx.Err() != nil {
			return runErr
		}
		return fmt.Errorf("lost the lease %s/%s", e.Namespace, e.Name)
	}
}
