// Package agent assembles the node agent, the kubelet role: the node's
// containerd (supervised, or one the operator runs), its image store, the
// Node registration and heartbeat (runtime/agent/node), the pod sandboxes
// (sandbox/...) and the pod worker (runtime/agent/pods).
//
// The node reports Ready only once pods can run on it: its pod CIDR is
// assigned and the bridge holds the gateway address. A node that is Ready
// before then would attract pods it cannot start.
package agent
