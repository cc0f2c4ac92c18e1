// Package files writes the per-pod /etc/hosts and /etc/resolv.conf that the
// sandbox bind-mounts into every container of the pod (and preopens for
// wasm modules), the way kubelet manages them: the files live in the pod's
// directory on the node, not in any image, so all containers of a pod see
// the same name, address and cluster DNS, and an image cannot override them.
//
// Both files are written to a temporary name and renamed into place, so a
// container starting concurrently never reads a half-written file.
package files
