package e2e

import (
	"sync"
	"sync/atomic"
)

// Load is requests made in a loop by several workers until Stop: what an
// agent restart must not disturb.
type Load struct {
	Requests, Failures atomic.Int64
	firstFailure       atomic.Value
	stop               chan struct{}
	wg                 sync.WaitGroup
}

// StartLoad runs one worker per request function, each calling its
// function again and again.
func StartLoad(requests ...func() error) *Load {
	l := &Load{stop: make(chan struct{})}
	for _, req := range requests {
		l.wg.Go(func() {
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				l.Requests.Add(1)
				if err := req(); err != nil {
					l.Failures.Add(1)
					l.firstFailure.CompareAndSwap(nil, err.Error())
				}
			}
		})
	}
	return l
}

// Stop ends the workers and waits for them.
func (l *Load) Stop() {
	close(l.stop)
	l.wg.Wait()
}

// FirstFailure is the first failed request's error, or nil.
func (l *Load) FirstFailure() any { return l.firstFailure.Load() }
