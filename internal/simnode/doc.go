// Package simnode plays the part of nodes and their kubelets in tests of the
// control plane, before (and independently of) the real node agent.
//
// A simulated node is a Node object with capacity, a Ready condition and the
// kubernetes.io/hostname label, plus a Lease in kube-node-lease renewed every
// few seconds. Its "kubelet" watches the pods bound to it and writes the
// status a real kubelet would: conditions, phase Running, container statuses
// with startedAt, a pod IP and the host IP. Nothing runs.
//
// Tests steer a pod's life with pod annotations:
//
//	simnode.wasmkube.io/exit-code: "N"    every container exits with N: the pod
//	                                      ends Succeeded (0) or Failed (non-zero)
//	simnode.wasmkube.io/exit-code.NAME    the same for one container; the pod
//	                                      ends only when all its containers have
//	                                      an exit code (this one or the pod-wide one)
//	simnode.wasmkube.io/run-for: "2s"     how long the containers run before exiting
//
// A pod being deleted is removed with a delete at grace period 0, as a
// kubelet does once its containers have stopped, so deletions in tests finish
// without waiting for a grace period.
//
// With Options.Bind the package also binds pods nobody scheduled, round robin
// over the running nodes, so controller tests do not need a scheduler. The
// binding goes through pods/binding, as a scheduler's does.
//
// Everything talks to the API server through client-go, the way the real
// agent will, so the tests exercise the same API paths.
package simnode
