// Package volumes prepares and removes the volumes of the pods running on
// a node, in kubelet's layout and with kubelet's semantics, so that
// manifests written for Kubernetes behave the same here.
//
// Every volume lives under the pod's directory:
//
//	<podsDir>/<podUID>/volumes/kubernetes.io~empty-dir/<name>
//	<podsDir>/<podUID>/volumes/kubernetes.io~configmap/<name>
//	<podsDir>/<podUID>/volumes/kubernetes.io~secret/<name>
//	<podsDir>/<podUID>/volumes/kubernetes.io~downward-api/<name>
//	<podsDir>/<podUID>/volumes/kubernetes.io~projected/<name>
//
// and a hostPath volume is the host path itself. The containers of a pod
// bind-mount these directories, which is how they share them.
//
// The agent calls Setup on every sync of a pod, not only when the pod
// starts: ConfigMaps, Secrets and the pod's own metadata change while the
// pod runs, and kubelet brings such volumes up to date in place. Containers
// must never see half of an update, so the files of those volumes are
// written the way kubelet's AtomicWriter writes them: a new payload goes
// into a fresh timestamped directory, the "..data" symlink is switched to it
// with one rename(2), and the names the containers read are symlinks through
// "..data". A reader therefore sees either the whole old payload or the
// whole new one. Because the containers bind-mount the volume directory,
// not the files in it, the switch is visible inside them.
//
// Secret, downward API and projected volumes are backed by tmpfs, as in
// kubelet, so that secrets and tokens are never written to the node's disk;
// so is an emptyDir with medium Memory, whose size is bounded by its
// sizeLimit, the pod's memory limit or the node's allocatable memory. Those
// mounts outlive an agent restart; PodUIDs lets the agent find the volumes
// of pods that are gone, and TearDown unmounts them before it removes
// anything, so that removing a directory never reaches through a mount.
package volumes
