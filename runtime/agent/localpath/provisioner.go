package localpath

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	storagehelpers "k8s.io/component-helpers/storage/volume"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	storagelisters "k8s.io/client-go/listers/storage/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
)

// Config describes the node the provisioner serves.
type Config struct {
	Client   kubernetes.Interface
	NodeName string
	// Dir holds the volumes, one directory per PersistentVolume.
	Dir string
	Log *slog.Logger
}

// Provisioner makes and removes the local-path volumes of one node.
type Provisioner struct {
	cfg      Config
	factory  informers.SharedInformerFactory
	claims   corelisters.PersistentVolumeClaimLister
	volumes  corelisters.PersistentVolumeLister
	classes  storagelisters.StorageClassLister
	queue    workqueue.TypedRateLimitingInterface[string]
	recorder record.EventRecorder
	synced   []cache.InformerSynced
}

// Keys of the queue: a claim is "claim/<namespace>/<name>", a volume
// "volume/<name>".
const (
	claimPrefix  = "claim/"
	volumePrefix = "volume/"
)

// New prepares a provisioner; Run starts it.
func New(cfg Config) (*Provisioner, error) {
	if cfg.Client == nil || cfg.NodeName == "" || cfg.Dir == "" {
		return nil, errors.New("localpath: a client, a node name and a directory are required")
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("localpath: %w", err)
	}
	cfg.Dir = dir
	factory := informers.NewSharedInformerFactory(cfg.Client, 0)
	p := &Provisioner{
		cfg:     cfg,
		factory: factory,
		claims:  factory.Core().V1().PersistentVolumeClaims().Lister(),
		volumes: factory.Core().V1().PersistentVolumes().Lister(),
		classes: factory.Storage().V1().StorageClasses().Lister(),
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "local-path-provisioner"}),
	}
	enqueue := func(prefix string) cache.ResourceEventHandler {
		add := func(obj any) {
			if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
				p.queue.Add(prefix + key)
			}
		}
		return cache.ResourceEventHandlerFuncs{AddFunc: add, UpdateFunc: func(_, obj any) { add(obj) }}
	}
	for _, r := range []struct {
		inf cache.SharedIndexInformer
		h   cache.ResourceEventHandler
	}{
		{factory.Core().V1().PersistentVolumeClaims().Informer(), enqueue(claimPrefix)},
		{factory.Core().V1().PersistentVolumes().Informer(), enqueue(volumePrefix)},
		{factory.Storage().V1().StorageClasses().Informer(), cache.ResourceEventHandlerFuncs{}},
	} {
		reg, err := r.inf.AddEventHandler(r.h)
		if err != nil {
			return nil, fmt.Errorf("localpath: %w", err)
		}
		p.synced = append(p.synced, reg.HasSynced)
	}
	return p, nil
}

// Run ensures the class, then provisions and deletes volumes until ctx
// ends.
func (p *Provisioner) Run(ctx context.Context) error {
	defer p.queue.ShutDown()
	if err := os.MkdirAll(p.cfg.Dir, 0o755); err != nil {
		return fmt.Errorf("localpath: %w", err)
	}
	// The API may still be settling while the node starts: retry.
	err := wait.PollUntilContextCancel(ctx, time.Second, true, func(ctx context.Context) (bool, error) {
		if err := EnsureClass(ctx, p.cfg.Client); err != nil {
			p.cfg.Log.Warn("localpath: storage class", "err", err)
			return false, nil
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("localpath: %w", err)
	}
	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	defer broadcaster.Shutdown()
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: p.cfg.Client.CoreV1().Events("")})
	// Upstream's provisioners name themselves <provisioner>_<host>.
	p.recorder = broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: ProvisionerName + "_" + p.cfg.NodeName})

	p.factory.Start(ctx.Done())
	defer p.factory.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), p.synced...) {
		return fmt.Errorf("localpath: informers did not sync: %w", ctx.Err())
	}
	go func() {
		<-ctx.Done()
		p.queue.ShutDown()
	}()
	for p.next(ctx) {
	}
	return nil
}

func (p *Provisioner) next(ctx context.Context) bool {
	key, quit := p.queue.Get()
	if quit {
		return false
	}
	defer p.queue.Done(key)
	if err := p.sync(ctx, key); err != nil {
		if ctx.Err() == nil {
			p.cfg.Log.Info("localpath: sync failed, will retry", "key", key, "err", err)
		}
		p.queue.AddRateLimited(key)
		return true
	}
	p.queue.Forget(key)
	return true
}

func (p *Provisioner) sync(ctx context.Context, key string) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	if rest, ok := strings.CutPrefix(key, claimPrefix); ok {
		ns, name, err := cache.SplitMetaNamespaceKey(rest)
		if err != nil {
			return nil
		}
		return p.syncClaim(ctx, ns, name)
	}
	return p.syncVolume(ctx, strings.TrimPrefix(key, volumePrefix))
}

// ours says whether the claim waits for this node's provisioner.
func (p *Provisioner) ours(claim *corev1.PersistentVolumeClaim) bool {
	prov := claim.Annotations[storagehelpers.AnnStorageProvisioner]
	if prov == "" {
		prov = claim.Annotations[storagehelpers.AnnBetaStorageProvisioner]
	}
	return prov == ProvisionerName && claim.Annotations[storagehelpers.AnnSelectedNode] == p.cfg.NodeName &&
		claim.Spec.VolumeName == "" && claim.DeletionTimestamp == nil
}

// volumeName is upstream's name for a provisioned volume.
func volumeName(claim *corev1.PersistentVolumeClaim) string { return "pvc-" + string(claim.UID) }

func (p *Provisioner) syncClaim(ctx context.Context, namespace, name string) error {
	claim, err := p.claims.PersistentVolumeClaims(namespace).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil || !p.ours(claim) {
		return err
	}
	pvName := volumeName(claim)
	if _, err := p.volumes.Get(pvName); err == nil {
		return nil // made already; the PersistentVolume controller binds it
	}
	if _, err := p.cfg.Client.CoreV1().PersistentVolumes().Get(ctx, pvName, metav1.GetOptions{}); err == nil {
		return nil
	}
	p.recorder.Eventf(claim, corev1.EventTypeNormal, "Provisioning", "External provisioner is provisioning volume for claim %q", namespace+"/"+name)
	class, err := p.classes.Get(storagehelpers.GetPersistentVolumeClaimClass(claim))
	if err != nil {
		p.recorder.Eventf(claim, corev1.EventTypeWarning, "ProvisioningFailed", "failed to get storageclass %q: %v", storagehelpers.GetPersistentVolumeClaimClass(claim), err)
		return err
	}
	pv, err := p.provision(ctx, claim, class, pvName)
	if err != nil {
		p.recorder.Eventf(claim, corev1.EventTypeWarning, "ProvisioningFailed", "failed to provision volume with StorageClass %q: %v", class.Name, err)
		return err
	}
	p.cfg.Log.Info("localpath: provisioned a volume", "claim", namespace+"/"+name, "volume", pv.Name, "path", pv.Spec.HostPath.Path)
	p.recorder.Eventf(claim, corev1.EventTypeNormal, "ProvisioningSucceeded", "Successfully provisioned volume %s", pv.Name)
	return nil
}

// provision makes the directory and the PersistentVolume; the directory
// is removed again when the volume cannot be created.
func (p *Provisioner) provision(ctx context.Context, claim *corev1.PersistentVolumeClaim, class *storagev1.StorageClass, pvName string) (*corev1.PersistentVolume, error) {
	if claim.Spec.Selector != nil {
		return nil, errors.New("claim Selector is not supported")
	}
	if m := claim.Spec.VolumeMode; m != nil && *m == corev1.PersistentVolumeBlock {
		return nil, errors.New("volumeMode Block is not supported: local-path volumes are directories")
	}
	dir := filepath.Join(p.cfg.Dir, pvName)
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return nil, fmt.Errorf("making %s: %w", dir, err)
	}
	// Any container user may write, as with rancher's local-path volumes;
	// MkdirAll's mode is masked by the umask.
	if err := os.Chmod(dir, 0o777); err != nil {
		return nil, fmt.Errorf("making %s: %w", dir, err)
	}
	reclaim := corev1.PersistentVolumeReclaimDelete
	if class.ReclaimPolicy != nil {
		reclaim = *class.ReclaimPolicy
	}
	hostPathType := corev1.HostPathDirectoryOrCreate
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{
			Name:        pvName,
			Annotations: map[string]string{storagehelpers.AnnDynamicallyProvisioned: ProvisionerName},
		},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: claim.Spec.Resources.Requests[corev1.ResourceStorage]},
			AccessModes:                   claim.Spec.AccessModes,
			PersistentVolumeReclaimPolicy: reclaim,
			StorageClassName:              class.Name,
			MountOptions:                  class.MountOptions,
			VolumeMode:                    claim.Spec.VolumeMode,
			ClaimRef: &corev1.ObjectReference{
				Kind: "PersistentVolumeClaim", APIVersion: "v1", Namespace: claim.Namespace, Name: claim.Name,
				UID: claim.UID, ResourceVersion: claim.ResourceVersion,
			},
			PersistentVolumeSource: corev1.PersistentVolumeSource{
				HostPath: &corev1.HostPathVolumeSource{Path: dir, Type: &hostPathType},
			},
			NodeAffinity: &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{
				NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{{
					Key: corev1.LabelHostname, Operator: corev1.NodeSelectorOpIn, Values: []string{p.cfg.NodeName},
				}}}},
			}},
		},
	}
	created, err := p.cfg.Client.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return pv, nil
	}
	if err != nil {
		_ = os.Remove(dir)
		return nil, fmt.Errorf("creating PersistentVolume %s: %w", pvName, err)
	}
	return created, nil
}

// onThisNode says whether a volume is one of this node's local-path
// volumes: provisioned here, under this node's directory.
func (p *Provisioner) onThisNode(pv *corev1.PersistentVolume) (string, bool) {
	if pv.Annotations[storagehelpers.AnnDynamicallyProvisioned] != ProvisionerName || pv.Spec.HostPath == nil {
		return "", false
	}
	dir := filepath.Clean(pv.Spec.HostPath.Path)
	if filepath.Dir(dir) != p.cfg.Dir || filepath.Base(dir) != pv.Name {
		return "", false
	}
	na := pv.Spec.NodeAffinity
	if na == nil || na.Required == nil {
		return "", false
	}
	for _, t := range na.Required.NodeSelectorTerms {
		for _, e := range t.MatchExpressions {
			if e.Key == corev1.LabelHostname && slices.Contains(e.Values, p.cfg.NodeName) {
				return dir, true
			}
		}
	}
	return "", false
}

// syncVolume deletes a Released volume whose policy is Delete: the data
// first, then the object, so that nothing is left behind if the agent
// stops between the two.
func (p *Provisioner) syncVolume(ctx context.Context, name string) error {
	pv, err := p.volumes.Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	dir, ok := p.onThisNode(pv)
	if !ok || pv.Status.Phase != corev1.VolumeReleased || pv.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimDelete {
		return nil
	}
	if err := os.RemoveAll(dir); err != nil {
		p.recorder.Eventf(pv, corev1.EventTypeWarning, "VolumeFailedDelete", "removing %s: %v", dir, err)
		return fmt.Errorf("removing %s: %w", dir, err)
	}
	uid := pv.UID
	err = p.cfg.Client.CoreV1().PersistentVolumes().Delete(ctx, name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
	if err != nil && !apierrors.IsNotFound(err) {
		p.recorder.Eventf(pv, corev1.EventTypeWarning, "VolumeFailedDelete", "%v", err)
		return fmt.Errorf("deleting PersistentVolume %s: %w", name, err)
	}
	p.cfg.Log.Info("localpath: deleted a volume", "volume", name, "path", dir)
	return nil
}
