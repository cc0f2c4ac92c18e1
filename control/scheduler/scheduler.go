package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/wasmkube/wasmkube/control/controllers/framework"
)

// Options configure a Scheduler. The zero value is a working
// default-scheduler without leader election.
type Options struct {
	// Name is the spec.schedulerName this scheduler serves and the source
	// of its events; default "default-scheduler".
	Name string
	// LeaderElection makes the scheduler schedule only while it holds the
	// Lease LeaseNamespace/LeaseName (kube-system/kube-scheduler).
	LeaderElection bool
	// Identity is this instance's name in the Lease; default
	// "<hostname>_<uuid>".
	Identity       string
	LeaseNamespace string
	LeaseName      string
	// LeaseDuration, RenewDeadline and RetryPeriod default to upstream's
	// 15 s, 10 s and 2 s.
	LeaseDuration time.Duration
	RenewDeadline time.Duration
	RetryPeriod   time.Duration
	// BindWorkers is how many bindings (and status patches) may be in
	// flight at once; default 16.
	BindWorkers int
	// FlushInterval is how often unschedulable pods are retried even if
	// nothing changed; default 30 s.
	FlushInterval time.Duration
	// PercentageOfNodesToScore is upstream's option: 0 means adaptive (all
	// nodes up to 100, then fewer in proportion).
	PercentageOfNodesToScore int
}

func (o Options) withDefaults() Options {
	if o.Name == "" {
		o.Name = v1.DefaultSchedulerName
	}
	if o.Identity == "" {
		host, _ := os.Hostname()
		o.Identity = host + "_" + string(uuid.NewUUID())
	}
	if o.LeaseNamespace == "" {
		o.LeaseNamespace = "kube-system"
	}
	if o.LeaseName == "" {
		o.LeaseName = "kube-scheduler"
	}
	if o.LeaseDuration == 0 {
		o.LeaseDuration = 15 * time.Second
	}
	if o.RenewDeadline == 0 {
		o.RenewDeadline = 10 * time.Second
	}
	if o.RetryPeriod == 0 {
		o.RetryPeriod = 2 * time.Second
	}
	if o.BindWorkers <= 0 {
		o.BindWorkers = 16
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = 30 * time.Second
	}
	return o
}

// Scheduler assigns pending pods to nodes. See the package documentation.
type Scheduler struct {
	opts     Options
	client   kubernetes.Interface
	factory  informers.SharedInformerFactory
	recorder record.EventRecorder
	log      *slog.Logger

	cache     *cache
	alg       *algorithm
	ctrl      *framework.Controller
	podLister corelisters.PodLister
	synced    []toolscache.InformerSynced
	work      chan func(context.Context)

	mu sync.Mutex
	// unschedulable are keys of pods that fit nowhere, waiting for a
	// cluster change; moveSeq counts such changes so that a change during
	// a cycle is not missed.
	unschedulable map[string]struct{}
	moveSeq       uint64

	bound atomic.Int64
}

// New builds a scheduler over the given informer factory and registers its
// event handlers; the factory may be shared with other controllers.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, recorder record.EventRecorder, opts Options) (*Scheduler, error) {
	opts = opts.withDefaults()
	s := &Scheduler{
		opts:          opts,
		client:        client,
		factory:       factory,
		recorder:      recorder,
		log:           slog.With("component", opts.Name),
		cache:         newCache(),
		work:          make(chan func(context.Context), 4*opts.BindWorkers),
		unschedulable: map[string]struct{}{},
	}
	s.ctrl = framework.New(opts.Name, s.syncPod)

	pods := factory.Core().V1().Pods()
	nodes := factory.Core().V1().Nodes()
	rcs := factory.Node().V1().RuntimeClasses()
	s.podLister = pods.Lister()
	s.alg = newAlgorithm(s.cache, rcs.Lister(), rand.Uint64())
	s.alg.percentageOfNodesToScore = opts.PercentageOfNodesToScore
	claims, pvs, classes := factory.Core().V1().PersistentVolumeClaims(), factory.Core().V1().PersistentVolumes(), factory.Storage().V1().StorageClasses()
	s.alg.volumes = &volumeListers{claims: claims.Lister(), volumes: pvs.Lister(), classes: classes.Lister()}
	moveOnChange := toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { s.moveAll() },
		UpdateFunc: func(any, any) { s.moveAll() },
	}

	handlers := []struct {
		inf toolscache.SharedIndexInformer
		h   toolscache.ResourceEventHandler
	}{
		{pods.Informer(), toolscache.ResourceEventHandlerFuncs{AddFunc: s.onPodAdd, UpdateFunc: s.onPodUpdate, DeleteFunc: s.onPodDelete}},
		{nodes.Informer(), toolscache.ResourceEventHandlerFuncs{AddFunc: s.onNodeAdd, UpdateFunc: s.onNodeUpdate, DeleteFunc: s.onNodeDelete}},
		{rcs.Informer(), toolscache.ResourceEventHandlerFuncs{
			AddFunc:    func(any) { s.moveAll() },
			UpdateFunc: func(any, any) { s.moveAll() },
		}},
		// A claim or volume appearing or being bound may make a pod fit.
		{claims.Informer(), moveOnChange},
		{pvs.Informer(), moveOnChange},
		{classes.Informer(), moveOnChange},
	}
	for _, h := range handlers {
		reg, err := h.inf.AddEventHandler(h.h)
		if err != nil {
			return nil, fmt.Errorf("registering event handler: %w", err)
		}
		s.synced = append(s.synced, reg.HasSynced)
	}
	return s, nil
}

// Starter adapts the scheduler to framework.Starter for the controller manager.
func Starter(opts Options) framework.Starter {
	return func(cc *framework.Context) (func(context.Context) error, error) {
		opts = opts.withDefaults()
		s, err := New(cc.Client, cc.Informers, cc.Recorder(opts.Name), opts)
		if err != nil {
			return nil, fmt.Errorf("scheduler: %w", err)
		}
		return s.Run, nil
	}
}

// Bound is how many bindings this scheduler has completed.
func (s *Scheduler) Bound() int64 { return s.bound.Load() }

// Run starts the informers (if nobody has) and schedules until ctx ends, or,
// with leader election, until leadership is lost.
func (s *Scheduler) Run(ctx context.Context) error {
	s.factory.Start(ctx.Done())
	if s.opts.LeaderElection {
		return s.runElected(ctx)
	}
	return s.run(ctx)
}

func (s *Scheduler) run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for range s.opts.BindWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case f := <-s.work:
					f(ctx)
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(s.opts.FlushInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				s.moveAll()
			}
		}
	}()
	// One worker: cycles are serial, as upstream's, so each sees the
	// assumptions of the previous one; the parallelism is in binding.
	err := s.ctrl.Run(ctx, 1, s.synced...)
	cancel()
	wg.Wait()
	if err != nil {
		return fmt.Errorf("scheduler: %w", err)
	}
	return nil
}

func podKey(pod *v1.Pod) string { return pod.Namespace + "/" + pod.Name }

func (s *Scheduler) responsible(pod *v1.Pod) bool {
	return pod.Spec.SchedulerName == s.opts.Name && pod.Spec.NodeName == "" && pod.DeletionTimestamp == nil
}

// syncPod runs one scheduling cycle for one pending pod.
func (s *Scheduler) syncPod(ctx context.Context, key string) error {
	ns, name, err := toolscache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	pod, err := s.podLister.Pods(ns).Get(name)
	if apierrors.IsNotFound(err) {
		s.dropUnschedulable(key)
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading pod %s: %w", key, err)
	}
	if !s.responsible(pod) || s.cache.isAssumed(pod.UID) {
		return nil
	}
	seq := s.currentSeq()
	node, err := s.alg.schedule(newPodInfo(pod))
	if err != nil {
		s.handleFailure(ctx, pod, err, seq)
		return nil
	}
	select {
	case s.work <- func(ctx context.Context) { s.bind(ctx, pod, node) }:
	case <-ctx.Done():
		s.cache.forget(pod.UID)
	}
	return nil
}

// bind posts the Binding of an assumed pod.
func (s *Scheduler) bind(ctx context.Context, pod *v1.Pod, node string) {
	if err := s.bindVolumes(ctx, pod, node); err != nil {
		s.cache.forget(pod.UID)
		if ctx.Err() != nil {
			return
		}
		s.recorder.Eventf(pod, v1.EventTypeWarning, "FailedScheduling", "running PreBind plugin %q: %v", "VolumeBinding", err)
		s.log.Info("binding volumes failed, will retry", "pod", podKey(pod), "node", node, "err", err)
		s.ctrl.EnqueueAfter(podKey(pod), time.Second)
		return
	}
	b := &v1.Binding{}
	b.Name, b.Namespace, b.UID = pod.Name, pod.Namespace, pod.UID
	b.Target = v1.ObjectReference{Kind: "Node", Name: node}
	err := s.client.CoreV1().Pods(pod.Namespace).Bind(ctx, b, metav1CreateOptions)
	if err != nil {
		s.cache.forget(pod.UID)
		if apierrors.IsNotFound(err) || ctx.Err() != nil {
			return
		}
		if !apierrors.IsConflict(err) {
			s.recorder.Eventf(pod, v1.EventTypeWarning, "FailedScheduling", "Binding rejected: %v", err)
		}
		s.log.Info("binding failed, will retry", "pod", podKey(pod), "node", node, "err", err)
		s.ctrl.EnqueueAfter(podKey(pod), time.Second)
		return
	}
	s.bound.Add(1)
	s.recorder.Eventf(pod, v1.EventTypeNormal, "Scheduled", "Successfully assigned %s/%s to %s", pod.Namespace, pod.Name, node)
}

// handleFailure reports why a pod fits nowhere and parks it until the
// cluster changes.
func (s *Scheduler) handleFailure(ctx context.Context, pod *v1.Pod, err error, seq uint64) {
	reason := v1.PodReasonUnschedulable
	var fe *fitError
	if !errors.As(err, &fe) && !errors.Is(err, errNoNodes) {
		reason = v1.PodReasonSchedulerError
	}
	msg := err.Error()
	s.recorder.Event(pod, v1.EventTypeWarning, "FailedScheduling", truncateMessage(msg))
	s.markUnschedulable(podKey(pod), seq)
	select {
	case s.work <- func(ctx context.Context) { s.setScheduledCondition(ctx, pod, reason, msg) }:
	case <-ctx.Done():
	}
}

// truncateMessage keeps event messages within the API's 1 kB note limit, as
// upstream does.
func truncateMessage(msg string) string {
	const limit, suffix = 1024, " ..."
	if len(msg) <= limit {
		return msg
	}
	return msg[:limit-len(suffix)] + suffix
}
