// Package localpath is the node's dynamic volume provisioner for the
// local-path StorageClass: the node-local counterpart of an external
// provisioner such as rancher's local-path-provisioner, run inside each
// node agent.
//
// It serves the claims the PersistentVolume controller has handed to
// provisioner wasmkube.io/local-path (the volume.kubernetes.io/
// storage-provisioner annotation) and that the scheduler has placed on
// this node (volume.kubernetes.io/selected-node): it makes a directory
// DIR/storage/<pv name> and creates a PersistentVolume for it, a hostPath
// volume with node affinity to this node, pre-bound to the claim, which
// the PersistentVolume controller then binds. When such a volume is
// Released and its reclaim policy is Delete, it removes the directory and
// then the PersistentVolume.
//
// EnsureClass creates the local-path class at start, as the cluster's
// default class, when it does not exist.
package localpath
