/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Socket-level service load balancing: a connect() or sendto() to a
 * frontend is sent to one of its backends before any packet exists, so
 * neither conntrack nor NAT is involved for traffic that starts on the node.
 * recvmsg4 and getpeername4 translate back, so the application keeps seeing
 * the address it asked for (TCP's getpeername, UDP's reply source, which
 * DNS resolvers compare with the server they queried).
 */
#include <linux/bpf.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "lb.h"

#define ECONNREFUSED 111
#define NSEC_PER_SEC 1000000000ULL

/* Returned by pick when the frontend has no backend: the caller refuses. */
#define PICK_REFUSE 1
#define PICK_NONE 0
#define PICK_OK 2

/* node_pod says whether the calling task is one of the node's pods: in the
 * pods cgroup of node_config or below it. */
static __always_inline int node_pod(void)
{
	__u32 zero = 0;
	struct node_config *cfg = bpf_map_lookup_elem(&lb_config, &zero);
	if (!cfg || !cfg->pods_cgroup_id)
		return 0;
	return bpf_get_current_ancestor_cgroup_id(cfg->pods_cgroup_level) == cfg->pods_cgroup_id;
}

/* own_node says whether a frontend on one of the node's own addresses means
 * this node for the socket being connected. */
static __always_inline int own_node(struct bpf_sock_addr *ctx, __u16 flags)
{
	if (bpf_get_netns_cookie(ctx) == bpf_get_netns_cookie(NULL))
		return 1;
	return (flags & SVC_F_NODE_ADDR) && node_pod();
}

static __always_inline int pick(struct bpf_sock_addr *ctx, struct backend_value *out)
{
	struct svc_key key = {
		.addr = ctx->user_ip4,
		.port = (__be16)ctx->user_port,
		.proto = (__u8)ctx->protocol,
		.scope = SCOPE_SOCKET,
	};
	struct svc_value *svc = bpf_map_lookup_elem(&lb_services, &key);
	if (!svc)
		return PICK_NONE;
	if ((svc->flags & (SVC_F_HOSTNS_ONLY | SVC_F_NODE_ADDR)) && !own_node(ctx, svc->flags))
		return PICK_NONE;
	__u32 count = svc->count;
	if (count == 0)
		return PICK_REFUSE;

	__u32 id = svc->id;
	struct affinity_key akey = {};
	struct affinity_value *aff = NULL;
	__u64 now = 0;
	if (svc->affinity_timeout) {
		akey.client = bpf_get_netns_cookie(ctx);
		akey.id = id;
		now = bpf_ktime_get_ns();
		aff = bpf_map_lookup_elem(&lb_affinity, &akey);
		if (aff && now - aff->last_ns < (__u64)svc->affinity_timeout * NSEC_PER_SEC &&
		    aff->slot < count) {
			/* The slot must still hold the stored backend: the
			 * backend may have gone while the client was idle. */
			struct backend_key bkey = {.id = id, .slot = aff->slot};
			struct backend_value *be = bpf_map_lookup_elem(&lb_backends, &bkey);
			if (be && be->addr == aff->backend.addr && be->port == aff->backend.port) {
				aff->last_ns = now;
				*out = *be;
				return PICK_OK;
			}
		}
	}

	__u32 slot = bpf_get_prandom_u32() % count;
	struct backend_key bkey = {.id = id, .slot = slot};
	struct backend_value *be = bpf_map_lookup_elem(&lb_backends, &bkey);
	if (!be) {
		/* The frontend shrank after count was read and the slot is
		 * already gone; slot 0 outlives every shrink that keeps a
		 * backend. */
		bkey.slot = 0;
		be = bpf_map_lookup_elem(&lb_backends, &bkey);
		if (!be)
			return PICK_REFUSE;
		slot = 0;
	}
	*out = *be;

	if (svc->affinity_timeout) {
		struct affinity_value val = {
			.backend = *be,
			.slot = slot,
			.last_ns = now,
		};
		bpf_map_update_elem(&lb_affinity, &akey, &val, BPF_ANY);
	}
	return PICK_OK;
}

static __always_inline int translate(struct bpf_sock_addr *ctx)
{
	struct backend_value be = {};
	int r = pick(ctx, &be);
	if (r == PICK_NONE)
		return 1;
	if (r == PICK_REFUSE) {
		/* kube-proxy rejects connections to a Service without
		 * endpoints; fail at once instead of timing out. */
		bpf_set_retval(-ECONNREFUSED);
		return 0;
	}

	struct sock_rev_key rkey = {
		.cookie = bpf_get_socket_cookie(ctx),
		.addr = be.addr,
		.port = be.port,
	};
	struct sock_rev_value rval = {
		.addr = ctx->user_ip4,
		.port = (__be16)ctx->user_port,
	};
	bpf_map_update_elem(&lb_sock_rev, &rkey, &rval, BPF_ANY);

	ctx->user_ip4 = be.addr;
	ctx->user_port = (__u32)be.port;
	return 1;
}

static __always_inline int reverse(struct bpf_sock_addr *ctx)
{
	struct sock_rev_key rkey = {
		.cookie = bpf_get_socket_cookie(ctx),
		.addr = ctx->user_ip4,
		.port = (__be16)ctx->user_port,
	};
	struct sock_rev_value *rval = bpf_map_lookup_elem(&lb_sock_rev, &rkey);
	if (rval) {
		ctx->user_ip4 = rval->addr;
		ctx->user_port = (__u32)rval->port;
	}
	return 1;
}

SEC("cgroup/connect4")
int lb_connect4(struct bpf_sock_addr *ctx)
{
	return translate(ctx);
}

SEC("cgroup/sendmsg4")
int lb_sendmsg4(struct bpf_sock_addr *ctx)
{
	return translate(ctx);
}

SEC("cgroup/recvmsg4")
int lb_recvmsg4(struct bpf_sock_addr *ctx)
{
	return reverse(ctx);
}

SEC("cgroup/getpeername4")
int lb_getpeername4(struct bpf_sock_addr *ctx)
{
	return reverse(ctx);
}

char _license[] SEC("license") = "Dual BSD/GPL";
