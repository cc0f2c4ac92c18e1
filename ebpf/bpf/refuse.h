/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * tc.c's answer to a packet for a frontend without backends. Included by
 * tc.c after its packet parsing (struct pkt, IP_OFF).
 */
#ifndef WASMKUBE_REFUSE_H
#define WASMKUBE_REFUSE_H

#include <linux/ip.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

/* csum_fold of a partial sum from bpf_csum_diff, not yet inverted. */
static __always_inline __u16 csum_add16(__s64 sum)
{
	__u32 s = (__u32)sum;

	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u16)s;
}

#define ICMP_DEST_UNREACH 3
#define ICMP_PORT_UNREACH 3

struct icmp_unreach {
	__u8 type;
	__u8 code;
	__sum16 checksum;
	__be32 unused;
};

/* The quoted transport header: 8 bytes of UDP, 20 of TCP (see refuse). */
#define QUOTE_MAX 20

/*
 * Refuses a packet to a frontend without backends the way kube-proxy's
 * REJECT rule does: an ICMP port unreachable back to the client, out of
 * the interface the packet came in on. The packet itself becomes the
 * reply: trimmed to its IP header and transport header, with a new IP and
 * ICMP header put in front.
 *
 * A packet from a local socket on a veth is CHECKSUM_PARTIAL: the kernel
 * may still "finish" its transport checksum (on a device without checksum
 * offload), at csum_start + csum_offset, which after the headers are put
 * in front is the quoted header's checksum field. So that field is set to
 * the one value such a late finish writes again (2F = -sum of the rest, in
 * ones' complement: F is that halved, a rotation), and the ICMP checksum
 * is computed over it: the reply is right whether or not the kernel
 * touches it. The quote reaches past that field (TCP's is at 16), which
 * bpf_skb_change_tail insists on anyway.
 */
static __always_inline int refuse(struct __sk_buff *skb, struct pkt *p)
{
	struct {
		struct iphdr ip;
		struct icmp_unreach icmp;
	} hdr = {};
	struct iphdr orig;
	__u8 macs[12], swapped[12];
	__u8 quote[QUOTE_MAX] = {};
	__u32 qlen, csum_at, len, i;
	__u16 s, f;
	__s64 sum;

	if (bpf_skb_load_bytes(skb, IP_OFF, &orig, sizeof(orig)) < 0 ||
	    orig.ihl != 5)
		return TC_ACT_SHOT;
	/* Never to a source that is not one host. */
	if (!orig.saddr || (orig.saddr & bpf_htonl(0xf0000000)) == bpf_htonl(0xe0000000) ||
	    orig.saddr == 0xffffffff)
		return TC_ACT_SHOT;
	if (p->f.proto == IPPROTO_TCP) {
		qlen = 20;
		csum_at = offsetof(struct tcphdr, check);
	} else {
		qlen = 8;
		csum_at = offsetof(struct udphdr, check);
	}
	if (bpf_ntohs(orig.tot_len) < sizeof(orig) + qlen ||
	    bpf_skb_load_bytes(skb, 0, macs, sizeof(macs)) < 0 ||
	    bpf_skb_load_bytes(skb, IP_OFF + sizeof(orig), quote, qlen) < 0)
		return TC_ACT_SHOT;

	quote[csum_at] = quote[csum_at + 1] = 0;
	sum = bpf_csum_diff(NULL, 0, (__be32 *)quote, qlen, 0);
	if (sum < 0)
		return TC_ACT_SHOT;
	s = ~csum_add16(sum);
	f = (s >> 1) | (s << 15);
	if (!f)
		f = 0xffff; /* what the kernel writes for a zero result */
	__builtin_memcpy(&quote[csum_at], &f, sizeof(f));

	len = IP_OFF + sizeof(orig) + qlen;
	/* Through a real length change, which is what turns a
	 * CHECKSUM_COMPLETE packet's now wrong sum off. */
	if (bpf_skb_change_tail(skb, len + 4, 0) < 0 ||
	    bpf_skb_change_tail(skb, len, 0) < 0)
		return TC_ACT_SHOT;
	if (bpf_skb_adjust_room(skb, sizeof(hdr), BPF_ADJ_ROOM_MAC, 0) < 0)
		return TC_ACT_SHOT;

	hdr.ip.version = 4;
	hdr.ip.ihl = 5;
	hdr.ip.tot_len = bpf_htons(sizeof(hdr) + sizeof(orig) + qlen);
	hdr.ip.ttl = 64;
	hdr.ip.protocol = IPPROTO_ICMP;
	hdr.ip.saddr = orig.daddr;
	hdr.ip.daddr = orig.saddr;
	sum = bpf_csum_diff(NULL, 0, (__be32 *)&hdr.ip, sizeof(hdr.ip), 0);
	if (sum < 0)
		return TC_ACT_SHOT;
	hdr.ip.check = ~csum_add16(sum);

	hdr.icmp.type = ICMP_DEST_UNREACH;
	hdr.icmp.code = ICMP_PORT_UNREACH;
	sum = bpf_csum_diff(NULL, 0, (__be32 *)&hdr.icmp, sizeof(hdr.icmp), 0);
	if (sum >= 0)
		sum = bpf_csum_diff(NULL, 0, (__be32 *)&orig, sizeof(orig), sum);
	if (sum >= 0)
		sum = bpf_csum_diff(NULL, 0, (__be32 *)quote, qlen, sum);
	if (sum < 0)
		return TC_ACT_SHOT;
	hdr.icmp.checksum = ~csum_add16(sum);

	for (i = 0; i < 6; i++) {
		swapped[i] = macs[i + 6];
		swapped[i + 6] = macs[i];
	}
	if (bpf_skb_store_bytes(skb, 0, swapped, sizeof(swapped), 0) < 0 ||
	    bpf_skb_store_bytes(skb, IP_OFF, &hdr, sizeof(hdr), 0) < 0 ||
	    bpf_skb_store_bytes(skb, IP_OFF + sizeof(hdr) + sizeof(orig) + csum_at,
				&f, sizeof(f), 0) < 0)
		return TC_ACT_SHOT;
	return bpf_redirect(skb->ifindex, 0);
}

#endif
