package scheduler

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// runElected schedules only while holding the Lease. Informers run (and the
// cache stays current) the whole time, so a new leader starts at once.
func (s *Scheduler) runElected(ctx context.Context) error {
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: s.opts.LeaseNamespace, Name: s.opts.LeaseName},
		Client:     s.client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: s.opts.Identity},
	}
	// The callback hands over its context instead of scheduling inside it,
	// so that Run can wait for the scheduling loop to finish.
	leading := make(chan context.Context, 1)
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		LeaseDuration:   s.opts.LeaseDuration,
		RenewDeadline:   s.opts.RenewDeadline,
		RetryPeriod:     s.opts.RetryPeriod,
		ReleaseOnCancel: true,
		Name:            s.opts.Name,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(ctx context.Context) { leading <- ctx },
			OnStoppedLeading: func() {},
		},
	})
	if err != nil {
		return fmt.Errorf("scheduler leader election: %w", err)
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
		return fmt.Errorf("scheduler leader election ended without leading")
	case lctx := <-leading:
		s.log.Info("became leader", "lease", s.opts.LeaseNamespace+"/"+s.opts.LeaseName, "identity", s.opts.Identity)
		runErr := s.run(lctx)
		cancel()
		<-done
		if ctx.Err() != nil {
			return runErr
		}
		// Upstream exits the process here: another instance may already be
		// scheduling with a cache this one cannot trust.
		return fmt.Errorf("scheduler lost the lease %s/%s", s.opts.LeaseNamespace, s.opts.LeaseName)
	}
}
