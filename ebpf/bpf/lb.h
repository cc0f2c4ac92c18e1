/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The maps shared by the socket hooks (sock.c) and the tc programs (tc.c).
 * Each is pinned by name, so both objects, and every agent that loads them
 * again after a restart, use the same instance.
 *
 * All addresses and ports are in network byte order, as the programs see
 * them. The Go side mirrors these layouts in ebpf/lb.
 */
#ifndef WASMKUBE_LB_H
#define WASMKUBE_LB_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define SCOPE_SOCKET 0   /* matched by the socket hooks */
#define SCOPE_EXTERNAL 1 /* matched by tc on the node's interface */

/* A frontend: an address and port a Service answers on. */
struct svc_key {
	__be32 addr;
	__be16 port;
	__u8 proto; /* IPPROTO_TCP or IPPROTO_UDP */
	__u8 scope; /* SCOPE_* */
};

struct svc_value {
	__u32 id;               /* keys this frontend's backends and affinity */
	__u16 count;            /* backends in slots 0..count-1; 0 refuses */
	__u16 flags;            /* SVC_F_* */
	__u32 affinity_timeout; /* seconds; 0 means no session affinity */
	__u32 pad;
};

/* The frontend is an address of the node itself (a NodePort on a node
 * address or loopback, an external or LoadBalancer IP): the socket hooks
 * translate it for the host's network namespace only. In a pod, 127.0.0.1 is
 * the pod's own, and another namespace on this machine stands for another
 * host, whose packets the tc programs translate. */
#define SVC_F_HOSTNS_ONLY 1
/* The frontend is a NodePort on one of the node's own IPs: translated for
 * sockets of the host's network namespace and for those of the node's pods
 * (whose task is in the pods cgroup of node_config), which reach their own
 * node's NodePorts as kube-proxy lets them. Other namespaces stand for other
 * hosts, as with SVC_F_HOSTNS_ONLY. */
#define SVC_F_NODE_ADDR 2

struct backend_key {
	__u32 id;
	__u32 slot;
};

struct backend_value {
	__be32 addr;
	__be16 port;
	__u16 pad;
};

/* client is the netns cookie for SCOPE_SOCKET, the source IPv4 for
 * SCOPE_EXTERNAL. */
struct affinity_key {
	__u64 client;
	__u32 id;
	__u32 pad;
};

struct affinity_value {
	struct backend_value backend;
	__u32 slot;
	__u32 pad;
	__u64 last_ns; /* bpf_ktime_get_ns of the last use */
};

/* What a socket connected or sent to, so that recvmsg4 and getpeername4 can
 * show the Service address instead of the backend. */
struct sock_rev_key {
	__u64 cookie; /* bpf_get_socket_cookie */
	__be32 addr;  /* backend */
	__be16 port;
	__u16 pad;
};

struct sock_rev_value {
	__be32 addr; /* frontend */
	__be16 port;
	__u16 pad;
};

/* The node, for the tc programs. */
struct node_config {
	__be32 node_ip;
	__be32 cluster_net; /* pod addresses: cluster_net/cluster_mask */
	__be32 cluster_mask;
	__be32 service_net;
	__be32 service_mask;
	/* This node's own pods: pod_net/pod_mask. Outside traffic to a
	 * backend beyond it (or the node IP) is source NATed to the node, so
	 * that its replies come back here; a mask of 0 makes every backend
	 * local. */
	__be32 pod_net;
	__be32 pod_mask;
	/* The cgroup (in the cgroup2 hierarchy) every pod of this node runs
	 * under, and its depth below the root: SVC_F_NODE_ADDR frontends
	 * are translated for sockets whose task descends from it. An id of 0
	 * means no pods cgroup. */
	__u32 pods_cgroup_level;
	__u64 pods_cgroup_id;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct svc_key);
	__type(value, struct svc_value);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} lb_services SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 262144);
	__type(key, struct backend_key);
	__type(value, struct backend_value);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} lb_backends SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct affinity_key);
	__type(value, struct affinity_value);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} lb_affinity SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 131072);
	__type(key, struct sock_rev_key);
	__type(value, struct sock_rev_value);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} lb_sock_rev SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct node_config);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} lb_config SEC(".maps");

#endif
