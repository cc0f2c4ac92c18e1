// Package logs reads container logs in the CRI format the way the kubelet
// serves them to `kubectl logs`: tail, since, timestamps, limitBytes and
// follow, which keeps reading while the container runs, across a rotation
// of its file, and stops once the container has exited and the file is
// drained.
package logs
