package framework

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"
)

// Context is what every controller is started with.
type Context struct {
	Client    kubernetes.Interface
	Informers informers.SharedInformerFactory
	// Recorder emits Events as the named component, for kubectl describe.
	Recorder func(component string) record.EventRecorder
	// Now is the clock; tests inject a fake one (CronJob schedules).
	Now func() time.Time
}

// Starter registers a controller's informers and returns the function that
// runs it; the manager starts the informers between the two steps.
type Starter func(ctx *Context) (run func(context.Context) error, err error)

// NewContext builds the shared context over one clientset.
func NewContext(client kubernetes.Interface, resync time.Duration) *Context {
	broadcaster := record.NewBroadcaster()
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events("")})
	var mu sync.Mutex
	recorders := map[string]record.EventRecorder{}
	return &Context{
		Client:    client,
		Informers: informers.NewSharedInformerFactoryWithOptions(client, resync, informers.WithTransform(StripManagedFields)),
		Recorder: func(component string) record.EventRecorder {
			mu.Lock()
			defer mu.Unlock()
			if r, ok := recorders[component]; ok {
				return r
			}
			r := broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: component})
			recorders[component] = r
			return r
		},
		Now: time.Now,
	}
}

// Run starts every controller and blocks until ctx ends or one fails.
func Run(ctx context.Context, cc *Context, starters map[string]Starter) error {
	runs := map[string]func(context.Context) error{}
	for name, start := range starters {
		run, err := start(cc)
		if err != nil {
			return fmt.Errorf("starting %s: %w", name, err)
		}
		runs[name] = run
	}
	cc.Informers.Start(ctx.Done())
	if len(runs) == 0 {
		<-ctx.Done()
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, len(runs))
	for name, run := range runs {
		go func() {
			if err := run(ctx); err != nil && ctx.Err() == nil {
				slog.Error("controller stopped", "controller", name, "err", err)
				errs <- fmt.Errorf("%s: %w", name, err)
				return
			}
			errs <- nil
		}()
	}
	var first error
	for range runs {
		if err := <-errs; err != nil && first == nil {
			first = err
			cancel()
		}
	}
	cc.Informers.Shutdown()
	return first
}

// StripManagedFields drops metadata.managedFields from cached objects, as
// kube-controller-manager does: no controller reads them, and they are often
// the largest part of an object, so caches of many pods hold far less.
func StripManagedFields(obj any) (any, error) {
	if accessor, ok := obj.(metav1.ObjectMetaAccessor); ok {
		accessor.GetObjectMeta().SetManagedFields(nil)
	}
	return obj, nil
}
