package scheduler

import (
	"context"

	"github.com/wasmkube/wasmkube/control/controllers/framework"
)

// runElected schedules only while holding the Lease. Informers run (and the
// cache stays current) the whole time, so a new leader starts at once.
func (s *Scheduler) runElected(ctx context.Context) error {
	return framework.RunElected(ctx, s.client, framework.Election{
		Namespace: s.opts.LeaseNamespace, Name: s.opts.LeaseName, Identity: s.opts.Identity,
		LeaseDuration: s.opts.LeaseDuration, RenewDeadline: s.opts.RenewDeadline, RetryPeriod: s.opts.RetryPeriod,
	}, s.run)
}
