package scheduler

import (
	"maps"
	"slices"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	corelisters "k8s.io/client-go/listers/core/v1"
	storagelisters "k8s.io/client-go/listers/storage/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
)

// fakeVolumes builds listers over the given claims, volumes and classes.
func fakeVolumes(t *testing.T, objs ...any) *volumeListers {
	t.Helper()
	claims := toolscache.NewIndexer(toolscache.MetaNamespaceKeyFunc, toolscache.Indexers{toolscache.NamespaceIndex: toolscache.MetaNamespaceIndexFunc})
	pvs := toolscache.NewIndexer(toolscache.MetaNamespaceKeyFunc, toolscache.Indexers{})
	classes := toolscache.NewIndexer(toolscache.MetaNamespaceKeyFunc, toolscache.Indexers{})
	for _, o := range objs {
		var err error
		switch o.(type) {
		case *v1.PersistentVolumeClaim:
			err = claims.Add(o)
		case *v1.PersistentVolume:
			err = pvs.Add(o)
		case *storagev1.StorageClass:
			err = classes.Add(o)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return &volumeListers{
		claims:  corelisters.NewPersistentVolumeClaimLister(claims),
		volumes: corelisters.NewPersistentVolumeLister(pvs),
		classes: storagelisters.NewStorageClassLister(classes),
	}
}

func pvcClaim(name, class, volume string) *v1.PersistentVolumeClaim {
	return &v1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID("uid-claim-" + name)},
		Spec: v1.PersistentVolumeClaimSpec{
			StorageClassName: ptr.To(class), VolumeName: volume,
			AccessModes: []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce},
			Resources:   v1.VolumeResourceRequirements{Requests: v1.ResourceList{v1.ResourceStorage: resource.MustParse("1Gi")}},
		},
	}
}

func localPV(name, class, node string, claimRef *v1.ObjectReference) *v1.PersistentVolume {
	return &v1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1.PersistentVolumeSpec{
			StorageClassName: class, ClaimRef: claimRef,
			Capacity:               v1.ResourceList{v1.ResourceStorage: resource.MustParse("1Gi")},
			AccessModes:            []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce},
			PersistentVolumeSource: v1.PersistentVolumeSource{Local: &v1.LocalVolumeSource{Path: "/mnt/" + name}},
			NodeAffinity: &v1.VolumeNodeAffinity{Required: &v1.NodeSelector{NodeSelectorTerms: []v1.NodeSelectorTerm{{
				MatchExpressions: []v1.NodeSelectorRequirement{{Key: v1.LabelHostname, Operator: v1.NodeSelectorOpIn, Values: []string{node}}},
			}}}},
		},
		Status: v1.PersistentVolumeStatus{Phase: v1.VolumeAvailable},
	}
}

func withClaim(name string) func(*v1.Pod) {
	return func(p *v1.Pod) {
		p.Spec.Volumes = append(p.Spec.Volumes, v1.Volume{Name: name, VolumeSource: v1.VolumeSource{
			PersistentVolumeClaim: &v1.PersistentVolumeClaimVolumeSource{ClaimName: name},
		}})
	}
}

func wffcClass(name, provisioner string) *storagev1.StorageClass {
	return &storagev1.StorageClass{
		ObjectMeta: metav1.ObjectMeta{Name: name}, Provisioner: provisioner,
		VolumeBindingMode: ptr.To(storagev1.VolumeBindingWaitForFirstConsumer),
	}
}

// scheduleWith runs one cycle over nodes n1..n3 with the given volume
// objects and returns the node or the failure message.
func scheduleWith(t *testing.T, pod *v1.Pod, objs ...any) (string, string) {
	t.Helper()
	nodes := []*v1.Node{testNode("n1", "4", "8Gi", 110), testNode("n2", "4", "8Gi", 110), testNode("n3", "4", "8Gi", 110)}
	a := newAlgorithm(testCache(nodes), nil, 7)
	a.volumes = fakeVolumes(t, objs...)
	node, err := a.schedule(newPodInfo(pod))
	if err != nil {
		return "", err.Error()
	}
	return node, ""
}

func TestVolumeBindingBoundVolumeNodeAffinity(t *testing.T) {
	claim := pvcClaim("data", "local", "pv-n2")
	pv := localPV("pv-n2", "local", "n2", &v1.ObjectReference{Namespace: "default", Name: "data", UID: claim.UID})
	for range 10 {
		node, msg := scheduleWith(t, testPod("p", "", "", withClaim("data")), claim, pv)
		if node != "n2" {
			t.Fatalf("pod with a claim bound to a volume on n2 went to %q (%s)", node, msg)
		}
	}
	pv.Spec.NodeAffinity.Required.NodeSelectorTerms[0].MatchExpressions[0].Values = []string{"elsewhere"}
	_, msg := scheduleWith(t, testPod("p", "", "", withClaim("data")), claim, pv)
	if !strings.HasPrefix(msg, "0/3 nodes are available: 3 node(s) had volume node affinity conflict.") {
		t.Errorf("message %q", msg)
	}
}

func TestVolumeBindingPreFilter(t *testing.T) {
	for _, tc := range []struct {
		name string
		objs []any
		want string
	}{
		{"missing claim", nil, `0/3 nodes are available: persistentvolumeclaim "data" not found.`},
		{"unbound immediate", []any{pvcClaim("data", "fast", ""), &storagev1.StorageClass{
			ObjectMeta: metav1.ObjectMeta{Name: "fast"}, Provisioner: "x.io/p", VolumeBindingMode: ptr.To(storagev1.VolumeBindingImmediate),
		}}, "0/3 nodes are available: pod has unbound immediate PersistentVolumeClaims."},
		{"bound to a missing volume", []any{pvcClaim("data", "local", "gone")},
			"0/3 nodes are available: 3 node(s) unavailable due to one or more pvc(s) bound to non-existent pv(s)."},
		{"no volume and no provisioner", []any{pvcClaim("data", "static", ""), wffcClass("static", "kubernetes.io/no-provisioner")},
			"0/3 nodes are available: 3 node(s) didn't find available persistent volumes to bind."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			node, msg := scheduleWith(t, testPod("p", "", "", withClaim("data")), tc.objs...)
			if !strings.HasPrefix(msg, tc.want) {
				t.Errorf("scheduled to %q with message %q, want %q", node, msg, tc.want)
			}
		})
	}
}

func TestVolumeBindingDelayedClaims(t *testing.T) {
	// A static volume free on n3 only: the pod goes there.
	claim := pvcClaim("data", "static", "")
	for range 10 {
		node, msg := scheduleWith(t, testPod("p", "", "", withClaim("data")), claim, wffcClass("static", "kubernetes.io/no-provisioner"),
			localPV("free-n3", "static", "n3", nil))
		if node != "n3" {
			t.Fatalf("went to %q (%s), want n3 where the free volume is", node, msg)
		}
	}
	// A provisioner can make a volume anywhere its topology allows.
	class := wffcClass("zoned", "x.io/p")
	class.AllowedTopologies = []v1.TopologySelectorTerm{{MatchLabelExpressions: []v1.TopologySelectorLabelRequirement{
		{Key: v1.LabelHostname, Values: []string{"n1", "n2"}},
	}}}
	seen := map[string]bool{}
	for range 30 {
		node, msg := scheduleWith(t, testPod("p", "", "", withClaim("data")), pvcClaim("data", "zoned", ""), class)
		if node == "" {
			t.Fatalf("not scheduled: %s", msg)
		}
		seen[node] = true
	}
	if seen["n3"] || len(seen) == 0 {
		t.Errorf("provisioned claims went to %v, want only n1 and n2", slices.Sorted(maps.Keys(seen)))
	}
}
