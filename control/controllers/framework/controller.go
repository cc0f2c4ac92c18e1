package framework

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// SyncFunc brings the object named by key ("namespace/name" or "name") to
// its desired state. It must be idempotent: it runs again after any error
// and whenever the object or something it owns changes.
type SyncFunc func(ctx context.Context, key string) error

// Controller is a workqueue with workers calling a SyncFunc.
type Controller struct {
	name  string
	queue workqueue.TypedRateLimitingInterface[string]
	sync  SyncFunc
	log   *slog.Logger
}

// New returns a controller whose queue retries failures from 5 ms up to
// 1000 s, as upstream controllers do.
func New(name string, sync SyncFunc) *Controller {
	return &Controller{
		name: name,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: name},
		),
		sync: sync,
		log:  slog.With("controller", name),
	}
}

// Name is the controller's name, used in logs and as the event source.
func (c *Controller) Name() string { return c.name }

// Enqueue adds the key of obj (an API object or a cache tombstone).
func (c *Controller) Enqueue(obj any) {
	key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
	if err != nil {
		c.log.Error("cannot compute key", "err", err)
		return
	}
	c.queue.Add(key)
}

// EnqueueKey adds a key directly.
func (c *Controller) EnqueueKey(key string) { c.queue.Add(key) }

// EnqueueAfter adds a key after a delay, for time-driven work such as a
// Deployment's progress deadline or a CronJob's next schedule.
func (c *Controller) EnqueueAfter(key string, d time.Duration) { c.queue.AddAfter(key, d) }

// Handler enqueues the object itself on every add, update and delete.
func (c *Controller) Handler() cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    c.Enqueue,
		UpdateFunc: func(_, obj any) { c.Enqueue(obj) },
		DeleteFunc: c.Enqueue,
	}
}

// Run waits for the informers to sync, then runs workers until ctx ends.
func (c *Controller) Run(ctx context.Context, workers int, synced ...cache.InformerSynced) error {
	defer c.queue.ShutDown()
	if !cache.WaitForNamedCacheSync(c.name, ctx.Done(), synced...) {
		return fmt.Errorf("%s: informers did not sync: %w", c.name, ctx.Err())
	}
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c.processNext(ctx) {
			}
		}()
	}
	<-ctx.Done()
	c.queue.ShutDown()
	wg.Wait()
	return nil
}

func (c *Controller) processNext(ctx context.Context) bool {
	key, quit := c.queue.Get()
	if quit {
		return false
	}
	defer c.queue.Done(key)
	if err := c.safeSync(ctx, key); err != nil {
		if ctx.Err() == nil {
			c.log.Info("sync failed, will retry", "key", key, "err", err)
		}
		c.queue.AddRateLimited(key)
		return true
	}
	c.queue.Forget(key)
	return true
}

// safeSync keeps a panic in one object's sync from taking down the whole
// controller manager: it becomes an error and a retry.
func (c *Controller) safeSync(ctx context.Context, key string) (err error) {
	defer func() {
		if r := recover(); r != nil {
			c.log.Error("panic in sync", "key", key, "panic", r, "stack", string(debug.Stack()))
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return c.sync(ctx, key)
}
