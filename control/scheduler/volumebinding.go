package scheduler

import (
	"context"
	"errors"
	"fmt"
	"time"

	storagehelpers "k8s.io/component-helpers/storage/volume"

	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/wait"
	corelisters "k8s.io/client-go/listers/core/v1"
	storagelisters "k8s.io/client-go/listers/storage/v1"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"

	pvbinding "github.com/wasmkube/wasmkube/control/controllers/persistentvolume"
)

// Upstream VolumeBinding's reasons.
const (
	reasonVolumeNodeConflict = "node(s) had volume node affinity conflict"
	reasonVolumeBindConflict = "node(s) didn't find available persistent volumes to bind"
	reasonPVNotExist         = "node(s) unavailable due to one or more pvc(s) bound to non-existent pv(s)"
	msgUnboundImmediate      = "pod has unbound immediate PersistentVolumeClaims"
)

// bindTimeout is how long a pod waits for its claims to be bound before
// the attempt fails, upstream's default bindTimeoutSeconds.
const bindTimeout = 600 * time.Second

// volumeListers are what volume binding reads; nil listers (unit tests of
// other filters) turn volume binding off.
type volumeListers struct {
	claims  corelisters.PersistentVolumeClaimLister
	volumes corelisters.PersistentVolumeLister
	classes storagelisters.StorageClassLister
}

// podVolumes is a pod's claims prepared for a cycle.
type podVolumes struct {
	// bound are the volumes of the pod's bound claims: their node affinity
	// must allow the node; missing counts claims bound to a volume that
	// does not exist.
	bound   []*v1.PersistentVolume
	missing int
	// delayed are unbound claims whose class waits for a first consumer:
	// each needs a free volume on the node or a provisioner.
	delayed []*delayedClaim
	// all is every volume, for finding free ones for delayed claims.
	all []*v1.PersistentVolume
}

type delayedClaim struct {
	claim *v1.PersistentVolumeClaim
	class *storagev1.StorageClass
}

// prefilter reads the pod's claims. A non-empty message makes the pod
// unschedulable everywhere: a claim missing, being deleted, or unbound in
// an Immediate class (which the PersistentVolume controller binds alone).
func (vl *volumeListers) prefilter(pod *v1.Pod) (*podVolumes, string, error) {
	if vl == nil || vl.claims == nil {
		return nil, "", nil
	}
	var pv *podVolumes
	for _, vol := range pod.Spec.Volumes {
		if vol.PersistentVolumeClaim == nil {
			continue
		}
		if pv == nil {
			pv = &podVolumes{}
		}
		name := vol.PersistentVolumeClaim.ClaimName
		claim, err := vl.claims.PersistentVolumeClaims(pod.Namespace).Get(name)
		if apierrors.IsNotFound(err) {
			return nil, fmt.Sprintf("persistentvolumeclaim %q not found", name), nil
		}
		if err != nil {
			return nil, "", err
		}
		if claim.DeletionTimestamp != nil {
			return nil, fmt.Sprintf("persistentvolumeclaim %q is being deleted", name), nil
		}
		if claim.Spec.VolumeName != "" {
			vol, err := vl.volumes.Get(claim.Spec.VolumeName)
			if apierrors.IsNotFound(err) {
				pv.missing++
				continue
			}
			if err != nil {
				return nil, "", err
			}
			pv.bound = append(pv.bound, vol)
			continue
		}
		var class *storagev1.StorageClass
		if cn := storagehelpers.GetPersistentVolumeClaimClass(claim); cn != "" {
			if class, err = vl.classes.Get(cn); err != nil && !apierrors.IsNotFound(err) {
				return nil, "", err
			}
		}
		if !pvbinding.IsDelayBinding(claim, class) {
			return nil, msgUnboundImmediate, nil
		}
		pv.delayed = append(pv.delayed, &delayedClaim{claim: claim, class: class})
	}
	if pv != nil && len(pv.delayed) > 0 {
		all, err := vl.volumes.List(labels.Everything())
		if err != nil {
			return nil, "", err
		}
		pv.all = all
	}
	return pv, "", nil
}

// filterVolumeBinding: the volumes of bound claims must allow the node,
// and every delayed claim needs a free matching volume on the node or a
// class that can provision there.
func filterVolumeBinding(st *podState, n *nodeInfo) *status {
	pv := st.volumes
	if pv == nil || n.node == nil {
		return nil
	}
	if pv.missing > 0 {
		return unresolvable(reasonPVNotExist)
	}
	for _, vol := range pv.bound {
		if !pvbinding.NodeAllowed(vol, n.node) {
			return unresolvable(reasonVolumeNodeConflict)
		}
	}
	for _, d := range pv.delayed {
		if pvbinding.FindBestMatch(d.claim, pv.all, false, n.node) != nil {
			continue
		}
		if !canProvision(d.class, n.node) {
			return unresolvable(reasonVolumeBindConflict)
		}
	}
	return nil
}

// canProvision says whether the class has a provisioner that may create a
// volume for the node: not the no-provisioner of static local volumes, and
// the node within the class's allowed topologies.
func canProvision(class *storagev1.StorageClass, node *v1.Node) bool {
	if class == nil || class.Provisioner == pvbinding.NoProvisioner {
		return false
	}
	if len(class.AllowedTopologies) == 0 {
		return true
	}
	for _, term := range class.AllowedTopologies {
		sel := v1.NodeSelectorTerm{}
		for _, e := range term.MatchLabelExpressions {
			sel.MatchExpressions = append(sel.MatchExpressions, v1.NodeSelectorRequirement{Key: e.Key, Operator: v1.NodeSelectorOpIn, Values: e.Values})
		}
		if ok, err := nodeaffinity.NewLazyErrorNodeSelector(&v1.NodeSelector{NodeSelectorTerms: []v1.NodeSelectorTerm{sel}}).Match(node); err == nil && ok {
			return true
		}
	}
	return false
}

// bindVolumes is upstream's PreBind of VolumeBinding: each delayed claim
// of the pod gets a free volume on the node reserved for it (the volume's
// claimRef) or, failing that, the node as its selected-node so that the
// provisioner makes one there; then it waits until the PersistentVolume
// controller has bound every claim. The pod is bound to the node only
// after that, so it stays Pending until its storage exists.
func (s *Scheduler) bindVolumes(ctx context.Context, pod *v1.Pod, nodeName string) error {
	vl := s.alg.volumes
	pv, msg, err := vl.prefilter(pod)
	if err != nil {
		return err
	}
	if msg != "" {
		return errors.New(msg)
	}
	if pv == nil || len(pv.delayed) == 0 {
		return nil
	}
	node, ok := s.cache.node(nodeName)
	if !ok {
		return fmt.Errorf("node %q is gone", nodeName)
	}
	for _, d := range pv.delayed {
		if err := s.reserveVolume(ctx, d, pv.all, node); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, bindTimeout)
	defer cancel()
	err = wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(context.Context) (bool, error) {
		if p, err := s.podLister.Pods(pod.Namespace).Get(pod.Name); err != nil || p.UID != pod.UID || p.DeletionTimestamp != nil {
			return false, fmt.Errorf("pod %s/%s was deleted", pod.Namespace, pod.Name)
		}
		for _, d := range pv.delayed {
			c, err := vl.claims.PersistentVolumeClaims(d.claim.Namespace).Get(d.claim.Name)
			if err != nil {
				return false, fmt.Errorf("claim %s/%s: %w", d.claim.Namespace, d.claim.Name, err)
			}
			if c.UID != d.claim.UID {
				return false, fmt.Errorf("claim %s/%s was replaced", d.claim.Namespace, d.claim.Name)
			}
			if c.Spec.VolumeName == "" || c.Annotations[storagehelpers.AnnBindCompleted] == "" {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("binding volumes: %w", err)
	}
	return nil
}

// reserveVolume points a free matching volume on the node at the claim,
// or asks for one to be provisioned there.
func (s *Scheduler) reserveVolume(ctx context.Context, d *delayedClaim, all []*v1.PersistentVolume, node *v1.Node) error {
	if vol := pvbinding.FindBestMatch(d.claim, all, false, node); vol != nil {
		if ref := vol.Spec.ClaimRef; ref != nil && ref.UID == d.claim.UID {
			return nil
		}
		vol = vol.DeepCopy()
		vol.Spec.ClaimRef = &v1.ObjectReference{
			Kind: "PersistentVolumeClaim", APIVersion: "v1", Namespace: d.claim.Namespace, Name: d.claim.Name,
			UID: d.claim.UID, ResourceVersion: d.claim.ResourceVersion,
		}
		metav1.SetMetaDataAnnotation(&vol.ObjectMeta, storagehelpers.AnnBoundByController, "yes")
		if _, err := s.client.CoreV1().PersistentVolumes().Update(ctx, vol, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("reserving volume %s for claim %s/%s: %w", vol.Name, d.claim.Namespace, d.claim.Name, err)
		}
		return nil
	}
	if d.claim.Annotations[storagehelpers.AnnSelectedNode] == node.Name {
		return nil
	}
	claim := d.claim.DeepCopy()
	metav1.SetMetaDataAnnotation(&claim.ObjectMeta, storagehelpers.AnnSelectedNode, node.Name)
	if _, err := s.client.CoreV1().PersistentVolumeClaims(claim.Namespace).Update(ctx, claim, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("selecting node %s for claim %s/%s: %w", node.Name, claim.Namespace, claim.Name, err)
	}
	return nil
}

// node returns the cached Node object.
func (c *cache) node(name string) (*v1.Node, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, ok := c.nodes[name]
	if !ok || n.node == nil {
		return nil, false
	}
	return n.node, true
}
