package pods

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	kuberecord "k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/flowcontrol"
	"k8s.io/client-go/util/workqueue"

	"github.com/wasmkube/wasmkube/runtime/agent/prober"
	"github.com/wasmkube/wasmkube/runtime/oci"
)

// Runtime is what the pod worker needs of a container runtime. runtime/oci
// is one; the wasm runtime is another.
type Runtime interface {
	Create(ctx context.Context, s oci.Spec) error
	Start(ctx context.Context, id string) error
	Status(ctx context.Context, id string) (oci.State, error)
	Wait(ctx context.Context, id string) (<-chan oci.ExitStatus, error)
	Stop(ctx context.Context, id string, grace time.Duration) error
	Remove(ctx context.Context, id string) error
	Containers(ctx context.Context) ([]oci.Container, error)
	// Exec runs a process in a running container and returns its exit
	// code: exec probes and lifecycle hooks.
	Exec(ctx context.Context, id string, o oci.ExecOptions) (int, error)
}

// Images is the node's image store.
type Images interface {
	Present(ctx context.Context, ref string) (bool, error)
	Pull(ctx context.Context, ref string) error
	// User is the image's configured user ("" for root), for
	// runAsNonRoot.
	User(ctx context.Context, ref string) (string, error)
}

// Mount is where a volume is on the host.
type Mount struct {
	HostPath string
	ReadOnly bool // configMap, secret, downwardAPI and projected volumes are
}

// VolumeManager prepares and removes pod volumes (runtime/agent/volumes).
type VolumeManager interface {
	Setup(ctx context.Context, pod *corev1.Pod) (map[string]Mount, error)
	TearDown(uid types.UID) error
}

// EnvResolver builds a container's environment as KEY=value strings; an
// error wrapping envvars.ErrConfigNotFound is a missing configMap or secret.
// podIPs are the sandbox's addresses, which the pod's status may not show
// yet.
type EnvResolver func(ctx context.Context, pod *corev1.Pod, c *corev1.Container, podIPs []string) ([]string, error)

// Config wires the pod worker to the node.
type Config struct {
	NodeName string
	NodeIP   net.IP
	Client   kubernetes.Interface
	Runtime  Runtime
	Images   Images
	// Sandboxes makes and removes pod sandboxes.
	Sandboxes *Sandboxes
	// Volumes prepares pod volumes.
	Volumes VolumeManager
	// Env resolves a container's environment.
	Env EnvResolver
	// Dir holds per-pod files (DIR/pods) and container logs (DIR/logs).
	Dir string
	// Workers is how many pods are synced at once. Default 8.
	Workers int
	// ResyncPeriod is how often every pod is synced even without events,
	// which is what brings configMap and secret volumes up to date.
	// Default 10s.
	ResyncPeriod time.Duration
	// ContainerGCPeriod is how often containers and logs of old attempts
	// are collected. Default 1m.
	ContainerGCPeriod time.Duration
	// Log receives what a sync cannot return. Default slog.Default().
	Log *slog.Logger
}

// Manager runs the pods bound to one node.
type Manager struct {
	cfg   Config
	log   *slog.Logger
	queue workqueue.TypedRateLimitingInterface[string]
	// lister is the informer's once it has synced, the checkpoints'
	// before; synced says which.
	listerMu sync.RWMutex
	lister   corelisters.PodLister
	synced   atomic.Bool
	// checkpoints keeps each pod's object on disk for a start without
	// the API server.
	checkpoints *checkpoints
	recorder    kuberecord.EventRecorder
	// prober runs the containers' probes and lifecycle hooks; made by
	// Run, since its workers live as long as Run does.
	prober *prober.Manager
	// crashBackOff and pullBackOff are upstream's exponential back-offs
	// for restarting containers and for pulling images.
	crashBackOff *flowcontrol.Backoff
	pullBackOff  *flowcontrol.Backoff

	mu      sync.Mutex
	records map[types.UID]*record

	// watched are the containers whose exit a goroutine waits for.
	watchMu sync.Mutex
	watched map[string]bool
	// terminators counts running terminations, so Run can wait for them.
	terminators sync.WaitGroup
}

// New makes a Manager; Run starts it.
func New(cfg Config) (*Manager, error) {
	if cfg.NodeName == "" || cfg.Client == nil || cfg.Runtime == nil || cfg.Images == nil ||
		cfg.Sandboxes == nil || cfg.Volumes == nil || cfg.Env == nil || cfg.Dir == "" {
		return nil, fmt.Errorf("pods: incomplete config (node name, client, runtime, images, sandboxes, volumes, env and dir are required)")
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 8
	}
	if cfg.ResyncPeriod <= 0 {
		cfg.ResyncPeriod = 10 * time.Second
	}
	if cfg.ContainerGCPeriod <= 0 {
		cfg.ContainerGCPeriod = time.Minute
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	return &Manager{
		cfg: cfg,
		log: cfg.Log,
		// Failed syncs (a missing ConfigMap, a busy runtime) retry within
		// 30 s at most: a pod waits on the node, not in a queue.
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](200*time.Millisecond, 30*time.Second),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "pods"}),
		crashBackOff: flowcontrol.NewBackOff(10*time.Second, 5*time.Minute),
		pullBackOff:  flowcontrol.NewBackOff(10*time.Second, 5*time.Minute),
		records:      map[types.UID]*record{},
		checkpoints:  newCheckpoints(filepath.Join(cfg.Dir, "checkpoints")),
		watched:      map[string]bool{},
	}, nil
}

// Run adopts the runtime's containers, then syncs the node's pods until ctx
// ends. Containers keep running when it returns: an agent restart must not
// restart its pods. Until the API server can be listed, the pods run from
// the checkpoints on disk; see startup.
func (m *Manager) Run(ctx context.Context) error {
	defer m.queue.ShutDown()
	if err := m.adopt(ctx); err != nil {
		return err
	}

	broadcaster := kuberecord.NewBroadcaster(kuberecord.WithContext(ctx))
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: m.cfg.Client.CoreV1().Events("")})
	defer broadcaster.Shutdown()
	m.recorder = broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "kubelet", Host: m.cfg.NodeName})
	m.prober = prober.New(ctx, prober.Config{Exec: m.cfg.Runtime, Recorder: m.recorder, OnChange: m.queue.Add, Log: m.log})

	factory := informers.NewSharedInformerFactoryWithOptions(m.cfg.Client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", m.cfg.NodeName).String()
		}))
	inf := factory.Core().V1().Pods()
	if _, err := inf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: m.enqueue,
		UpdateFunc: func(old, obj any) {
			if !statusOnly(old, obj) {
				m.cancelHookOnDelete(obj)
				m.enqueue(obj)
			}
		},
		DeleteFunc: m.enqueue,
	}); err != nil {
		return fmt.Errorf("pods: watch pods: %w", err)
	}
	unreachable := make(chan struct{})
	var unreachableOnce sync.Once
	if err := inf.Informer().SetWatchErrorHandlerWithContext(func(ctx context.Context, r *cache.Reflector, err error) {
		cache.DefaultWatchErrorHandler(ctx, r, err)
		unreachableOnce.Do(func() { close(unreachable) })
	}); err != nil {
		return fmt.Errorf("pods: watch pods: %w", err)
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	if err := m.startup(ctx, inf.Informer(), inf.Lister(), unreachable); err != nil {
		return err
	}

	var workers sync.WaitGroup
	for range m.cfg.Workers {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for m.processNext(ctx) {
			}
		}()
	}
	go wait.UntilWithContext(ctx, m.resyncAll, m.cfg.ResyncPeriod)
	go wait.UntilWithContext(ctx, m.housekeeping, time.Minute)
	go wait.UntilWithContext(ctx, m.collectContainers, m.cfg.ContainerGCPeriod)
	<-ctx.Done()
	m.queue.ShutDown()
	workers.Wait()
	m.terminators.Wait()
	return nil
}

// statusOnly says whether an update changed nothing but the status, as the
// agent's own status writes do: those need no sync, and syncing on them
// would run every pod twice per change.
func statusOnly(old, obj any) bool {
	o, ok1 := old.(*corev1.Pod)
	n, ok2 := obj.(*corev1.Pod)
	if !ok1 || !ok2 {
		return false
	}
	return apiequality.Semantic.DeepEqual(o.Spec, n.Spec) &&
		apiequality.Semantic.DeepEqual(o.ObjectMeta.DeletionTimestamp, n.ObjectMeta.DeletionTimestamp) &&
		apiequality.Semantic.DeepEqual(o.Labels, n.Labels) &&
		apiequality.Semantic.DeepEqual(o.Annotations, n.Annotations)
}

// cancelHookOnDelete ends the postStart hook of a pod being deleted: the
// sync waiting for the hook holds the pod's key, so the deletion's own sync
// could not run until the hook returned.
func (m *Manager) cancelHookOnDelete(obj any) {
	pod, ok := obj.(*corev1.Pod)
	if !ok || pod.DeletionTimestamp == nil {
		return
	}
	m.mu.Lock()
	rec := m.records[pod.UID]
	m.mu.Unlock()
	if rec != nil {
		rec.cancelHook()
	}
}

func (m *Manager) enqueue(obj any) {
	key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
	if err != nil {
		m.log.Error("pods: key of a pod event", "err", err)
		return
	}
	m.queue.Add(key)
}

func (m *Manager) resyncAll(context.Context) {
	pods, err := m.podLister().List(labels.Everything())
	if err != nil {
		return
	}
	for _, p := range pods {
		m.queue.Add(p.Namespace + "/" + p.Name)
	}
	m.crashBackOff.GC()
	m.pullBackOff.GC()
}

func (m *Manager) processNext(ctx context.Context) bool {
	key, quit := m.queue.Get()
	if quit {
		return false
	}
	defer m.queue.Done(key)
	err := m.syncRecovered(ctx, key)
	if err == nil {
		m.queue.Forget(key)
		return true
	}
	if ctx.Err() == nil {
		m.log.Info("pods: sync failed, will retry", "pod", key, "err", err)
	}
	m.queue.AddRateLimited(key)
	return true
}

// syncRecovered keeps one pod's bug from taking the agent down.
func (m *Manager) syncRecovered(ctx context.Context, key string) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic in sync of %s: %v", key, r)
		}
	}()
	return m.sync(ctx, key)
}

// adopt loads the records of containers a previous agent made.
func (m *Manager) adopt(ctx context.Context) error {
	cs, err := m.cfg.Runtime.Containers(ctx)
	if err != nil {
		return fmt.Errorf("pods: adopt running containers: %w", err)
	}
	recs := adopt(cs)
	// The output, stdin and terminal of the containers still running go
	// on through the FIFOs their shims hold.
	if a, ok := m.cfg.Runtime.(interface {
		Attach(ctx context.Context, id string) error
	}); ok {
		for _, c := range cs {
			if err := a.Attach(ctx, c.ID); err != nil {
				m.log.Warn("pods: reattach to a container", "id", c.ID, "err", err)
			}
		}
	}
	for uid, rec := range recs {
		if sb, err := m.cfg.Sandboxes.Adopt(uid); err == nil {
			rec.sandbox = sb
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for uid, rec := range recs {
		m.records[uid] = rec
	}
	if len(recs) > 0 {
		m.log.Info("pods: adopted containers of earlier pods", "pods", len(recs), "containers", len(cs))
	}
	return nil
}

// recordFor returns the pod's record, making one for a pod seen first.
func (m *Manager) recordFor(pod *corev1.Pod) *record {
	m.mu.Lock()
	defer m.mu.Unlock()
	rec := m.records[pod.UID]
	if rec == nil {
		rec = newRecord(pod.UID, pod.Namespace, pod.Name)
		m.records[pod.UID] = rec
	}
	return rec
}

// recordsOf returns the records of pods with this key whose uid is not
// keep: earlier pods of the same name whose objects are gone.
func (m *Manager) recordsOf(key string, keep types.UID) []*record {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*record
	for uid, rec := range m.records {
		if rec.key() == key && uid != keep {
			out = append(out, rec)
		}
	}
	return out
}

func (m *Manager) forget(uid types.UID) {
	m.mu.Lock()
	delete(m.records, uid)
	m.mu.Unlock()
	if err := m.checkpoints.remove(uid); err != nil {
		m.log.Warn("pods: forget a finalized pod", "uid", uid, "err", err)
	}
}
