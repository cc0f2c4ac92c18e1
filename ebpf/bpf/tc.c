/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * tc programs for the node's interface (TCX ingress and egress).
 *
 * ingress: packets from outside to a SCOPE_EXTERNAL frontend are sent to a
 *          backend (destination NAT, the client's address is kept), or
 *          refused with an ICMP port unreachable when it has none; replies
 *          to masqueraded pod traffic are sent back to the pod.
 * egress:  replies of those backends get the frontend back as their source,
 *          and pod traffic leaving the cluster network is masqueraded as the
 *          node's address.
 *
 * A backend that is not on this node (outside its pod range) would answer
 * the client straight from its own node, past the translation back: such
 * flows are also source NATed to the node's address (on egress, after the
 * kernel has routed the translated packet towards the backend's node), so
 * their replies come back here, get the client as destination on ingress
 * (as masqueraded replies do), are routed out again and get the frontend
 * as source on egress.
 *
 * Only IPv4 TCP and UDP are touched, and ICMP echo for masquerading (its
 * identifier stands in for the port: the request's source port, the reply's
 * destination port); everything else goes on unchanged. The
 * flow tables below are LRU maps: an idle flow is forgotten once the table
 * fills, never by a timer.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "lb.h"

#define NAT_PORT_MIN 61000 /* above Linux's ip_local_port_range */
#define NAT_PORT_MAX 65535
#define NAT_PORT_TRIES 16

#define ETH_OFF 0
#define IP_OFF ETH_HLEN
#define IP_CSUM_OFF (IP_OFF + offsetof(struct iphdr, check))
#define IP_SADDR_OFF (IP_OFF + offsetof(struct iphdr, saddr))
#define IP_DADDR_OFF (IP_OFF + offsetof(struct iphdr, daddr))

/* The start of an ICMP echo message (linux/icmp.h needs libc headers). */
struct icmp_echo {
	__u8 type;
	__u8 code;
	__sum16 checksum;
	__be16 id;
	__be16 seq;
};

#define ICMP_ECHOREPLY 0
#define ICMP_ECHO 8

/* One direction of a flow, as the packet carries it. */
struct flow {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 pad[3];
};

/* An address and port a packet is rewritten to. */
struct endpoint {
	__be32 addr;
	__be16 port;
	__u16 pad;
};

/* Where a service flow goes: its backend and, for a backend on another
 * node, the node port its packets leave with (0: the client's address is
 * kept). The layout is an endpoint's, with its padding put to use. */
struct ct_target {
	__be32 addr;
	__be16 port;
	__be16 nat_port;
};

/*
 * Service flows. Keyed by the client's packet as it arrives
 * (client -> frontend), the value is the backend it goes to; keyed by the
 * backend's reply (backend -> client), the value is the frontend to show as
 * the source. Both halves are written when the flow's first packet arrives.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 131072);
	__type(key, struct flow);
	__type(value, struct ct_target);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} tc_ct_fwd SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 131072);
	__type(key, struct flow);
	__type(value, struct endpoint);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} tc_ct_rev SEC(".maps");

/*
 * Masqueraded flows. tc_snat is keyed by the pod's packet as it leaves
 * (pod -> remote) and holds the node port it was given; tc_snat_rev is keyed
 * by the remote's reply (remote -> node_ip:nat port) and holds the pod's
 * address and port. A NAT port is unique per remote address and port, so the
 * same port serves many remotes. Service flows to a backend on another node
 * are in them too, the client in the pod's place.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 131072);
	__type(key, struct flow);
	__type(value, struct endpoint);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} tc_snat SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 131072);
	__type(key, struct flow);
	__type(value, struct endpoint);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} tc_snat_rev SEC(".maps");

/* A parsed IPv4 TCP, UDP or ICMP echo packet. */
struct pkt {
	struct flow f;
	__u32 csum_off;  /* the L4 checksum */
	__u32 sport_off; /* where f.sport and f.dport are */
	__u32 dport_off;
};

/*
 * egress is set for packets leaving through the interface: of ICMP, only
 * echo requests are taken then, and only echo replies on the way in.
 */
static __always_inline int parse(struct __sk_buff *skb, struct pkt *p,
				 int egress)
{
	__u32 l4_off;
	struct iphdr ip;
	__be16 proto;
	__be16 ports[2];

	if (bpf_skb_load_bytes(skb, 12, &proto, sizeof(proto)) < 0 ||
	    proto != bpf_htons(ETH_P_IP))
		return -1;
	if (bpf_skb_load_bytes(skb, IP_OFF, &ip, sizeof(ip)) < 0)
		return -1;
	if (ip.version != 4 || ip.ihl < 5)
		return -1;
	/* Only a first fragment has ports, and the others could not follow
	 * it to the same place: fragmented packets are left alone. */
	if (ip.frag_off & bpf_htons(0x3fff))
		return -1;

	l4_off = IP_OFF + ip.ihl * 4;
	p->f.saddr = ip.saddr;
	p->f.daddr = ip.daddr;
	p->f.proto = ip.protocol;
	p->f.pad[0] = p->f.pad[1] = p->f.pad[2] = 0;
	switch (ip.protocol) {
	case IPPROTO_TCP:
	case IPPROTO_UDP:
		if (bpf_skb_load_bytes(skb, l4_off, ports, sizeof(ports)) < 0)
			return -1;
		p->f.sport = ports[0];
		p->f.dport = ports[1];
		p->sport_off = l4_off;
		p->dport_off = l4_off + 2;
		p->csum_off = l4_off + (ip.protocol == IPPROTO_TCP ?
						offsetof(struct tcphdr, check) :
						offsetof(struct udphdr, check));
		return 0;
	case IPPROTO_ICMP: {
		struct icmp_echo icmp;

		if (bpf_skb_load_bytes(skb, l4_off, &icmp, sizeof(icmp)) < 0 ||
		    icmp.code != 0 ||
		    icmp.type != (egress ? ICMP_ECHO : ICMP_ECHOREPLY))
			return -1;
		p->csum_off = l4_off + offsetof(struct icmp_echo, checksum);
		p->sport_off = l4_off + offsetof(struct icmp_echo, id);
		p->dport_off = p->sport_off;
		p->f.sport = egress ? icmp.id : 0;
		p->f.dport = egress ? 0 : icmp.id;
		return 0;
	}
	}
	return -1;
}

/*
 * Rewrites one address (source or destination) and its port, fixing the IP
 * checksum and the L4 checksum, which covers the address through the pseudo
 * header (ICMP's does not). A UDP checksum of zero means "none" and stays
 * zero.
 */
static __always_inline int rewrite(struct __sk_buff *skb, struct pkt *p,
				   int dst, __be32 addr, __be16 port)
{
	__u32 addr_off = dst ? IP_DADDR_OFF : IP_SADDR_OFF;
	__u32 port_off = dst ? p->dport_off : p->sport_off;
	__be32 old_addr = dst ? p->f.daddr : p->f.saddr;
	__be16 old_port = dst ? p->f.dport : p->f.sport;
	__u64 mangled = p->f.proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0;

	if (old_addr != addr) {
		if (p->f.proto != IPPROTO_ICMP &&
		    bpf_l4_csum_replace(skb, p->csum_off, old_addr, addr,
					BPF_F_PSEUDO_HDR | mangled | sizeof(addr)) < 0)
			return -1;
		if (bpf_l3_csum_replace(skb, IP_CSUM_OFF, old_addr, addr,
					sizeof(addr)) < 0)
			return -1;
		if (bpf_skb_store_bytes(skb, addr_off, &addr, sizeof(addr), 0) < 0)
			return -1;
	}
	if (old_port != port) {
		if (bpf_l4_csum_replace(skb, p->csum_off, old_port, port,
					mangled | sizeof(port)) < 0)
			return -1;
		if (bpf_skb_store_bytes(skb, port_off, &port, sizeof(port), 0) < 0)
			return -1;
	}
	if (dst) {
		p->f.daddr = addr;
		p->f.dport = port;
	} else {
		p->f.saddr = addr;
		p->f.sport = port;
	}
	return 0;
}

static __always_inline struct node_config *node_config(void)
{
	__u32 zero = 0;
	struct node_config *cfg = bpf_map_lookup_elem(&lb_config, &zero);

	if (!cfg || !cfg->node_ip)
		return NULL;
	return cfg;
}

/*
 * The backend for a new flow of frontend svc from client: the one the client
 * had last time while its affinity lasts and that backend is still in the
 * same slot, otherwise one at random (and remembered, with affinity).
 */
static __always_inline int pick_backend(const struct svc_value *svc,
					__be32 client,
					struct backend_value *out)
{
	struct affinity_key akey = {.client = client, .id = svc->id};
	struct backend_key bkey = {.id = svc->id};
	struct backend_value *be;
	__u64 now = bpf_ktime_get_ns();

	if (svc->affinity_timeout) {
		struct affinity_value *av = bpf_map_lookup_elem(&lb_affinity, &akey);

		if (av && now - av->last_ns <
			      (__u64)svc->affinity_timeout * 1000000000ULL &&
		    av->slot < svc->count) {
			bkey.slot = av->slot;
			be = bpf_map_lookup_elem(&lb_backends, &bkey);
			if (be && be->addr == av->backend.addr &&
			    be->port == av->backend.port) {
				av->last_ns = now;
				*out = *be;
				return 0;
			}
		}
	}

	bkey.slot = bpf_get_prandom_u32() % svc->count;
	be = bpf_map_lookup_elem(&lb_backends, &bkey);
	if (!be)
		return -1;
	*out = *be;

	if (svc->affinity_timeout) {
		struct affinity_value av = {
			.backend = *be,
			.slot = bkey.slot,
			.last_ns = now,
		};
		bpf_map_update_elem(&lb_affinity, &akey, &av, BPF_ANY);
	}
	return 0;
}

#include "refuse.h"

static __always_inline int in_net(__be32 addr, __be32 net, __be32 mask)
{
	return mask && (addr & mask) == net;
}

/*
 * Gives a new flow a node port: rev is its reply (remote -> node_ip, dport
 * to be chosen) and orig the address and port the reply goes back to. The
 * flow's own port (want) is kept when it is in the range and free.
 */
static __always_inline int nat_port(struct flow *rev,
				    const struct endpoint *orig, __be16 want)
{
	__u16 port = bpf_ntohs(want);
	int i;

	for (i = 0; i < NAT_PORT_TRIES; i++) {
		if (i > 0 || port < NAT_PORT_MIN)
			port = NAT_PORT_MIN + bpf_get_prandom_u32() %
						      (NAT_PORT_MAX - NAT_PORT_MIN + 1);
		rev->dport = bpf_htons(port);
		if (bpf_map_update_elem(&tc_snat_rev, rev, orig, BPF_NOEXIST) == 0)
			return 0;
	}
	return -1;
}

/* Whether addr is on this node: no source NAT for outside traffic to it. */
static __always_inline int local_backend(const struct node_config *cfg,
					 __be32 addr)
{
	return !cfg || !cfg->pod_mask || addr == cfg->node_ip ||
	       in_net(addr, cfg->pod_net, cfg->pod_mask);
}

/* Destination NAT of a packet to an external frontend. */
static __always_inline int service_in(struct __sk_buff *skb, struct pkt *p,
				      const struct svc_value *svc)
{
	struct ct_target *ep, ct = {};
	struct endpoint fe = {.addr = p->f.daddr, .port = p->f.dport};
	struct endpoint client = {.addr = p->f.saddr, .port = p->f.sport};
	struct node_config *cfg;
	struct flow rev, snat_rev;
	struct backend_value be;

	if (svc->count == 0)
		return refuse(skb, p);

	cfg = node_config();
	ep = bpf_map_lookup_elem(&tc_ct_fwd, &p->f);
	if (ep) {
		ct = *ep;
	} else {
		if (pick_backend(svc, p->f.saddr, &be) < 0)
			return TC_ACT_SHOT;
		ct.addr = be.addr;
		ct.port = be.port;
	}
	if (cfg)
		snat_rev = (struct flow){
			.saddr = ct.addr,
			.daddr = cfg->node_ip,
			.sport = ct.port,
			.dport = ct.nat_port,
			.proto = p->f.proto,
		};
	if (!ep) {
		if (!local_backend(cfg, ct.addr)) {
			if (!cfg || nat_port(&snat_rev, &client, p->f.sport) < 0)
				return TC_ACT_SHOT;
			ct.nat_port = snat_rev.dport;
		}
		bpf_map_update_elem(&tc_ct_fwd, &p->f, &ct, BPF_ANY);
	}

	rev = (struct flow){
		.saddr = ct.addr,
		.daddr = p->f.saddr,
		.sport = ct.port,
		.dport = p->f.sport,
		.proto = p->f.proto,
	};
	/* The halves live in separate LRUs: bring back an evicted reply half. */
	if (!ep || !bpf_map_lookup_elem(&tc_ct_rev, &rev))
		bpf_map_update_elem(&tc_ct_rev, &rev, &fe, BPF_ANY);

	if (rewrite(skb, p, 1, ct.addr, ct.port) < 0)
		return TC_ACT_SHOT;

	/* Source NAT happens on egress, once the kernel has routed the packet
	 * (from the node's own address it would be a martian here); it finds
	 * the flow, as it arrives there, in tc_snat. */
	if (ct.nat_port && cfg && !bpf_map_lookup_elem(&tc_snat, &p->f)) {
		struct endpoint out = {.addr = cfg->node_ip, .port = ct.nat_port};

		bpf_map_update_elem(&tc_snat_rev, &snat_rev, &client, BPF_ANY);
		bpf_map_update_elem(&tc_snat, &p->f, &out, BPF_ANY);
	}
	return TC_ACT_UNSPEC;
}

/* Reply to masqueraded pod traffic: back to the pod. */
static __always_inline int snat_in(struct __sk_buff *skb, struct pkt *p)
{
	struct endpoint *pod = bpf_map_lookup_elem(&tc_snat_rev, &p->f);

	if (!pod)
		return TC_ACT_UNSPEC;
	if (rewrite(skb, p, 1, pod->addr, pod->port) < 0)
		return TC_ACT_SHOT;
	return TC_ACT_UNSPEC;
}

SEC("tcx/ingress")
int tc_ingress(struct __sk_buff *skb)
{
	struct pkt p = {};
	struct svc_key key = {};
	struct svc_value *svc;
	struct node_config *cfg;

	if (parse(skb, &p, 0) < 0)
		return TC_ACT_UNSPEC;

	key.addr = p.f.daddr;
	key.port = p.f.dport;
	key.proto = p.f.proto;
	key.scope = SCOPE_EXTERNAL;
	svc = bpf_map_lookup_elem(&lb_services, &key);
	if (svc)
		return service_in(skb, &p, svc);

	cfg = node_config();
	if (cfg && p.f.daddr == cfg->node_ip)
		return snat_in(skb, &p);
	return TC_ACT_UNSPEC;
}

/* The flags byte of a TCP header (offset 13). */
#define TCP_FLAG_SYN 0x02
#define TCP_FLAG_ACK_BIT 0x10

/*
 * Source NAT of a packet leaving as the node: of a flow in tc_snat (nat,
 * masqueraded or a service flow to another node), or a pod's new flow.
 */
static __always_inline int snat_out(struct __sk_buff *skb, struct pkt *p,
				    const struct node_config *cfg,
				    struct endpoint *nat)
{
	struct endpoint out = {.addr = cfg->node_ip};
	struct endpoint pod = {.addr = p->f.saddr, .port = p->f.sport};
	struct flow rev = {
		.saddr = p->f.daddr,
		.daddr = cfg->node_ip,
		.sport = p->f.dport,
		.proto = p->f.proto,
	};

	if (nat) {
		out = *nat;
		rev.daddr = out.addr;
		rev.dport = out.port;
		if (!bpf_map_lookup_elem(&tc_snat_rev, &rev))
			bpf_map_update_elem(&tc_snat_rev, &rev, &pod, BPF_ANY);
	} else {
		/* Only a flow the pod opens is masqueraded. A TCP segment other
		 * than a SYN without a flow is the pod answering a connection
		 * that reached it unmasqueraded (routed to its address), and
		 * must keep its source. */
		if (p->f.proto == IPPROTO_TCP) {
			__u8 flags;

			if (bpf_skb_load_bytes(skb, p->sport_off + 13, &flags,
					       sizeof(flags)) < 0)
				return TC_ACT_UNSPEC;
			if ((flags & (TCP_FLAG_SYN | TCP_FLAG_ACK_BIT)) !=
			    TCP_FLAG_SYN)
				return TC_ACT_UNSPEC;
		}
		if (nat_port(&rev, &pod, p->f.sport) < 0)
			return TC_ACT_SHOT;
		out.port = rev.dport;
		bpf_map_update_elem(&tc_snat, &p->f, &out, BPF_ANY);
	}

	if (rewrite(skb, p, 0, out.addr, out.port) < 0)
		return TC_ACT_SHOT;
	return TC_ACT_UNSPEC;
}

SEC("tcx/egress")
int tc_egress(struct __sk_buff *skb)
{
	struct pkt p = {};
	struct endpoint *fe, *nat;
	struct node_config *cfg;

	if (parse(skb, &p, 1) < 0)
		return TC_ACT_UNSPEC;

	fe = bpf_map_lookup_elem(&tc_ct_rev, &p.f);
	if (fe) {
		if (rewrite(skb, &p, 0, fe->addr, fe->port) < 0)
			return TC_ACT_SHOT;
		return TC_ACT_UNSPEC;
	}

	cfg = node_config();
	if (!cfg)
		return TC_ACT_UNSPEC;
	nat = bpf_map_lookup_elem(&tc_snat, &p.f);
	if (nat)
		return snat_out(skb, &p, cfg, nat);
	if (!in_net(p.f.saddr, cfg->cluster_net, cfg->cluster_mask) ||
	    in_net(p.f.daddr, cfg->cluster_net, cfg->cluster_mask) ||
	    in_net(p.f.daddr, cfg->service_net, cfg->service_mask))
		return TC_ACT_UNSPEC;
	return snat_out(skb, &p, cfg, NULL);
}

char _license[] SEC("license") = "Dual BSD/GPL";
