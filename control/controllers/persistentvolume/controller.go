package persistentvolume

import (
	"context"
	"fmt"

	storagehelpers "k8s.io/component-helpers/storage/volume"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	storagelisters "k8s.io/client-go/listers/storage/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/wasmkube/wasmkube/control/controllers/framework"
	"github.com/wasmkube/wasmkube/control/controllers/tombstone"
)

// Name is the controller's event source, as upstream's.
const Name = "persistentvolume-controller"

type controller struct {
	client   kubernetes.Interface
	claims   corelisters.PersistentVolumeClaimLister
	volumes  corelisters.PersistentVolumeLister
	classes  storagelisters.StorageClassLister
	pods     corelisters.PodLister
	recorder record.EventRecorder
	// Claims and volumes have their own queues, as upstream's binder: a
	// claim's key and a volume's key would otherwise collide for
	// cluster-scoped names.
	claimQueue  *framework.Controller
	volumeQueue *framework.Controller
}

// Starter runs the PersistentVolume controller.
func Starter() framework.Starter {
	return func(cc *framework.Context) (func(context.Context) error, error) {
		core := cc.Informers.Core().V1()
		c := &controller{
			client:   cc.Client,
			claims:   core.PersistentVolumeClaims().Lister(),
			volumes:  core.PersistentVolumes().Lister(),
			classes:  cc.Informers.Storage().V1().StorageClasses().Lister(),
			pods:     core.Pods().Lister(),
			recorder: cc.Recorder(Name),
		}
		c.claimQueue = framework.New(Name+"-claims", c.syncClaim)
		c.volumeQueue = framework.New(Name+"-volumes", c.syncVolume)
		regs := []struct {
			inf cache.SharedIndexInformer
			h   cache.ResourceEventHandler
		}{
			{core.PersistentVolumeClaims().Informer(), cache.ResourceEventHandlerFuncs{
				AddFunc:    c.onClaim,
				UpdateFunc: func(_, obj any) { c.onClaim(obj) },
				DeleteFunc: c.onClaim,
			}},
			{core.PersistentVolumes().Informer(), cache.ResourceEventHandlerFuncs{
				AddFunc:    c.onVolume,
				UpdateFunc: func(_, obj any) { c.onVolume(obj) },
				DeleteFunc: c.onVolume,
			}},
			{cc.Informers.Storage().V1().StorageClasses().Informer(), cache.ResourceEventHandlerFuncs{
				AddFunc: c.onClass,
			}},
			{core.Pods().Informer(), cache.ResourceEventHandlerFuncs{
				UpdateFunc: func(_, obj any) { c.onPod(obj) },
				DeleteFunc: c.onPod,
			}},
		}
		synced := make([]cache.InformerSynced, 0, len(regs))
		for _, r := range regs {
			reg, err := r.inf.AddEventHandler(r.h)
			if err != nil {
				return nil, fmt.Errorf("persistentvolume handler: %w", err)
			}
			synced = append(synced, reg.HasSynced)
		}
		return func(ctx context.Context) error {
			errs := make(chan error, 2)
			go func() { errs <- c.claimQueue.Run(ctx, 2, synced...) }()
			go func() { errs <- c.volumeQueue.Run(ctx, 2, synced...) }()
			err := <-errs
			if err2 := <-errs; err == nil {
				err = err2
			}
			return err
		}, nil
	}
}

// onClaim syncs the claim and the volume it is (or was) bound to.
func (c *controller) onClaim(obj any) {
	claim, ok := tombstone.Unwrap[*corev1.PersistentVolumeClaim](obj)
	if !ok {
		return
	}
	c.claimQueue.EnqueueKey(claim.Namespace + "/" + claim.Name)
	if claim.Spec.VolumeName != "" {
		c.volumeQueue.EnqueueKey(claim.Spec.VolumeName)
	}
}

// onVolume syncs the volume and the claim it points to, which may now
// find it.
func (c *controller) onVolume(obj any) {
	pv, ok := tombstone.Unwrap[*corev1.PersistentVolume](obj)
	if !ok {
		return
	}
	c.volumeQueue.EnqueueKey(pv.Name)
	if ref := pv.Spec.ClaimRef; ref != nil {
		c.claimQueue.EnqueueKey(ref.Namespace + "/" + ref.Name)
	} else {
		// A new or freed volume may be what a pending claim waits for.
		c.enqueuePendingClaims()
	}
}

// onClass retries the pending claims: a new class may give them a
// provisioner.
func (c *controller) onClass(any) { c.enqueuePendingClaims() }

// onPod wakes the claims of a pod that ended or went, so that a claim
// waiting for deletion can lose its protection finalizer.
func (c *controller) onPod(obj any) {
	pod, ok := tombstone.Unwrap[*corev1.Pod](obj)
	if !ok {
		return
	}
	for _, v := range pod.Spec.Volumes {
		if v.PersistentVolumeClaim != nil {
			c.claimQueue.EnqueueKey(pod.Namespace + "/" + v.PersistentVolumeClaim.ClaimName)
		}
	}
}

func (c *controller) enqueuePendingClaims() {
	claims, err := c.claims.List(labels.Everything())
	if err != nil {
		return
	}
	for _, claim := range claims {
		if claim.Spec.VolumeName == "" {
			c.claimQueue.EnqueueKey(claim.Namespace + "/" + claim.Name)
		}
	}
}

// class returns the claim's StorageClass, nil when it names none or the
// class does not exist.
func (c *controller) class(claim *corev1.PersistentVolumeClaim) (*storagev1.StorageClass, error) {
	name := storagehelpers.GetPersistentVolumeClaimClass(claim)
	if name == "" {
		return nil, nil
	}
	sc, err := c.classes.Get(name)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	return sc, err
}
