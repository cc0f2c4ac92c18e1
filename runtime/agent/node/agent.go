package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
)

// statusUpdateRetries is upstream's nodeStatusUpdateRetry: a write that
// fails this often waits for the next interval.
const statusUpdateRetries = 5

// errNodeGone means the Node was deleted under the running agent.
var errNodeGone = errors.New("node object was deleted")

// Agent registers one Node and keeps its Lease and status.
type Agent struct {
	client kubernetes.Interface
	cfg    Config
	paths  procPaths
	info   machineInfo

	registered     chan struct{}
	registeredOnce sync.Once
	// refresh asks the status loop for an evaluation now, when something
	// Ready depends on has changed.
	refresh    chan struct{}
	lastReport time.Time // of the status, touched only by the status loop
}

// New validates cfg, fills in its defaults and reads the machine's
// identity, so that a misconfiguration fails before anything is written.
func New(client kubernetes.Interface, cfg Config) (*Agent, error) {
	return newAgent(client, cfg, hostPaths())
}

func newAgent(client kubernetes.Interface, cfg Config, paths procPaths) (*Agent, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	info, err := readMachineInfo(paths)
	if err != nil {
		return nil, fmt.Errorf("machine info: %w", err)
	}
	return &Agent{client: client, cfg: cfg, paths: paths, info: info, registered: make(chan struct{}), refresh: make(chan struct{}, 1)}, nil
}

// Run registers the Node (create, or adopt and update an existing one of
// that name), then keeps its Lease and status until ctx ends.
func Run(ctx context.Context, client kubernetes.Interface, cfg Config) error {
	a, err := New(client, cfg)
	if err != nil {
		return err
	}
	return a.Run(ctx)
}

// Registered returns a channel closed once the Node exists and has been
// reported Ready.
func (a *Agent) Registered() <-chan struct{} { return a.registered }

// Name is the Node's name after defaulting.
func (a *Agent) Name() string { return a.cfg.Name }

// NodeIP is the node's InternalIP after defaulting.
func (a *Agent) NodeIP() net.IP { return a.cfg.NodeIP }

// Run registers the Node, then keeps its Lease and status until ctx
// ends, when it returns nil. API errors do not end it: they are logged
// and retried, as a node must outlive an API server restart.
func (a *Agent) Run(ctx context.Context) error {
	if err := a.registerUntilDone(ctx); err != nil {
		return nil // ctx ended before registration succeeded
	}
	var wg sync.WaitGroup
	wg.Go(func() { a.runLease(ctx) })
	defer wg.Wait()

	tick := time.NewTicker(a.cfg.StatusInterval)
	defer tick.Stop()
	for {
		err := a.syncStatus(ctx)
		if errors.Is(err, errNodeGone) {
			a.cfg.Log.Warn("node was deleted; registering it again")
			if a.registerUntilDone(ctx) == nil {
				a.lastReport = time.Time{}
				continue
			}
		} else if err != nil && ctx.Err() == nil {
			a.cfg.Log.Error("updating node status", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		case <-a.refresh:
		}
	}
}

// Refresh re-evaluates the node's conditions now instead of at the next
// interval, for a change the Ready function reports (the pod network
// coming up), so the node turns Ready without waiting out the interval.
func (a *Agent) Refresh() {
	select {
	case a.refresh <- struct{}{}:
	default:
	}
}

// registerUntilDone retries registration with upstream's backoff (100ms
// doubling to 7s) until it succeeds or ctx ends.
func (a *Agent) registerUntilDone(ctx context.Context) error {
	backoff := wait.Backoff{Duration: 100 * time.Millisecond, Factor: 2, Steps: 1 << 30, Cap: 7 * time.Second}
	return wait.ExponentialBackoffWithContext(ctx, backoff, func(ctx context.Context) (bool, error) {
		if err := a.register(ctx); err != nil {
			if ctx.Err() == nil {
				a.cfg.Log.Error("registering node", "err", err)
			}
			return false, nil
		}
		return true, nil
	})
}

// register creates the Node, or adopts an existing one of the same name
// by merging the agent's labels into it. Its status is written by the
// status loop right after, as for a created Node: the API server may
// drop status on create.
func (a *Agent) register(ctx context.Context) error {
	nodes := a.client.CoreV1().Nodes()
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:        a.cfg.Name,
			Labels:      a.wantLabels(),
			Annotations: a.wantAnnotations(),
		},
	}
	_, err := nodes.Create(ctx, n, metav1.CreateOptions{})
	if err == nil {
		a.cfg.Log.Info("registered node")
		return nil
	}
	if !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating node: %w", err)
	}
	existing, err := nodes.Get(ctx, a.cfg.Name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("getting existing node: %w", err)
	}
	labels := metaPatch(existing.Labels, a.wantLabels(), ownedLabels)
	annotations := metaPatch(existing.Annotations, a.wantAnnotations(), ownedAnnotations)
	if len(labels)+len(annotations) > 0 {
		// A merge patch of the maps touches only these keys, so labels
		// and annotations set by people or other components stay.
		meta := map[string]any{}
		if len(labels) > 0 {
			meta["labels"] = labels
		}
		if len(annotations) > 0 {
			meta["annotations"] = annotations
		}
		patch, err := json.Marshal(map[string]any{"metadata": meta})
		if err != nil {
			return fmt.Errorf("encoding label patch: %w", err)
		}
		if _, err := nodes.Patch(ctx, a.cfg.Name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			return fmt.Errorf("merging labels into existing node: %w", err)
		}
	}
	a.cfg.Log.Info("adopted existing node")
	return nil
}

// syncStatus evaluates the status and writes it when it changed or when
// the report interval has passed since the last write.
func (a *Agent) syncStatus(ctx context.Context) error {
	u, err := readUsage(a.paths, a.cfg.DataDir)
	if err != nil {
		return fmt.Errorf("reading node usage: %w", err)
	}
	var readyErr error
	if a.cfg.Ready != nil {
		readyErr = a.cfg.Ready()
	}
	var last error
	for range statusUpdateRetries {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		ready, err := a.writeStatus(ctx, u, readyErr)
		if err == nil {
			if ready {
				a.registeredOnce.Do(func() { close(a.registered) })
			}
			return nil
		}
		if errors.Is(err, errNodeGone) {
			return err
		}
		last = err
	}
	return last
}

func (a *Agent) writeStatus(ctx context.Context, u usage, readyErr error) (ready bool, err error) {
	nodes := a.client.CoreV1().Nodes()
	cur, err := nodes.Get(ctx, a.cfg.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return false, errNodeGone
	}
	if err != nil {
		return false, fmt.Errorf("getting node: %w", err)
	}
	now := a.cfg.Now()
	next := cur.DeepCopy()
	st := a.staticStatus(u)
	// Resources are set key by key so that others' (extended resources
	// from device plugins, for instance) survive.
	if next.Status.Capacity == nil {
		next.Status.Capacity = corev1.ResourceList{}
	}
	if next.Status.Allocatable == nil {
		next.Status.Allocatable = corev1.ResourceList{}
	}
	maps.Copy(next.Status.Capacity, st.Capacity)
	maps.Copy(next.Status.Allocatable, st.Allocatable)
	next.Status.Addresses = st.Addresses
	next.Status.DaemonEndpoints = st.DaemonEndpoints
	next.Status.NodeInfo = st.NodeInfo
	next.Status.RuntimeHandlers = st.RuntimeHandlers
	next.Status.Conditions = mergeConditions(cur.Status.Conditions, a.conditions(u, readyErr), now)
	ready = readyErr == nil

	if !statusChanged(&cur.Status, &next.Status) && !a.lastReport.IsZero() && now.Sub(a.lastReport) < a.cfg.StatusReportInterval {
		return ready, nil
	}
	patch, err := statusPatch(cur, next)
	if err != nil {
		return false, err
	}
	if _, err := nodes.Patch(ctx, a.cfg.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "status"); err != nil {
		if apierrors.IsNotFound(err) {
			return false, errNodeGone
		}
		return false, fmt.Errorf("patching node status: %w", err)
	}
	a.lastReport = now
	return ready, nil
}

// metaPatch is the merge patch of one metadata map: the wanted keys whose
// value differs, and a null for each owned key present but not wanted.
func metaPatch(existing, want map[string]string, owned []string) map[string]any {
	out := map[string]any{}
	for k, v := range want {
		if cur, ok := existing[k]; !ok || cur != v {
			out[k] = v
		}
	}
	for _, k := range owned {
		if _, wanted := want[k]; wanted {
			continue
		}
		if _, ok := existing[k]; ok {
			out[k] = nil
		}
	}
	return out
}

// statusPatch is the two-way strategic merge patch from cur to next, as
// upstream sends it: conditions merge by type and addresses by type, so
// the patch needs no resourceVersion and cannot conflict with writers of
// other fields.
func statusPatch(cur, next *corev1.Node) ([]byte, error) {
	oldJSON, err := json.Marshal(&corev1.Node{Status: cur.Status})
	if err != nil {
		return nil, fmt.Errorf("encoding node: %w", err)
	}
	newJSON, err := json.Marshal(&corev1.Node{Status: next.Status})
	if err != nil {
		return nil, fmt.Errorf("encoding node: %w", err)
	}
	patch, err := strategicpatch.CreateTwoWayMergePatch(oldJSON, newJSON, corev1.Node{})
	if err != nil {
		return nil, fmt.Errorf("computing status patch: %w", err)
	}
	return patch, nil
}
