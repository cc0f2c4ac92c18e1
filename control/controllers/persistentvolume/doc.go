// Package persistentvolume is the PersistentVolume controller (upstream's
// persistentvolume-binder): it binds each PersistentVolumeClaim to a
// matching PersistentVolume (capacity, access modes, class, selector,
// volume mode, or the volume a claim or volume names), keeps the phases of
// both (Pending/Bound/Lost; Available/Bound/Released/Failed), hands claims
// of a class with a provisioner over to that provisioner through the
// volume.kubernetes.io/storage-provisioner annotation, and reclaims the
// volumes of deleted claims (Retain leaves them Released; Delete is done by
// the volume's provisioner). It also keeps the kubernetes.io/pvc-protection
// and kubernetes.io/pv-protection finalizers: a claim used by a pod, or a
// volume bound to a claim, is not removed until that ends.
//
// The matching rules are exported (FindBestMatch, Matches,
// IsDelayBinding) because the scheduler's volume binding applies the same
// ones to the claims of the pods it places.
package persistentvolume
