/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What a packet carries that policy and conntrack need, read from its
 * Ethernet, IPv4 and L4 headers. Every read is bounds-checked against
 * data_end, so a truncated header is a bad packet, never a short read.
 */
#ifndef MBR_PARSE_H
#define MBR_PARSE_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

/* The first 8 bytes of an ICMP message (linux/icmp.h drags in libc headers). */
struct icmp_head {
	__u8 type;
	__u8 code;
	__u16 checksum;
	__u16 id;
	__u16 sequence;
};
#define ICMP_ECHOREPLY 0
#define ICMP_ECHO 8

#ifndef IPPROTO_SCTP
#define IPPROTO_SCTP 132
#endif

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_ACK 0x10

struct flow {
	__u32 saddr, daddr;
	__u16 sport, dport;	  /* conntrack ports (ICMP echo id, see abi.h) */
	__u16 policy_port;	  /* network order; the ICMP type for ICMP */
	__u8 proto;
	__u8 tcp_flags;
	__u8 has_ports;
	__u32 len;
};

/* What parse() found. */
#define PARSE_BAD (-1)   /* a truncated or malformed header */
#define PARSE_IPV4 0	   /* *f is filled in */
#define PARSE_OTHER_L3 1   /* ARP and other non-IP traffic */
#define PARSE_IPV6 2

static __always_inline int parse(struct __sk_buff *skb, struct flow *f)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip;
	__u32 ihl;

	if ((void *)(eth + 1) > end)
		return PARSE_BAD;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return eth->h_proto == bpf_htons(ETH_P_IPV6) ? PARSE_IPV6 : PARSE_OTHER_L3;
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > end)
		return PARSE_BAD;
	ihl = ip->ihl * 4;
	if (ihl < sizeof(*ip))
		return PARSE_BAD;
	f->saddr = ip->saddr;
	f->daddr = ip->daddr;
	f->proto = ip->protocol;
	f->len = skb->len;
	/* Later fragments carry no L4 header: judged with port 0. */
	if (ip->frag_off & bpf_htons(0x1fff))
		return PARSE_IPV4;
	void *l4 = (void *)ip + ihl;
	switch (ip->protocol) {
	case IPPROTO_TCP: {
		struct tcphdr *th = l4;
		if ((void *)(th + 1) > end)
			return PARSE_BAD;
		f->sport = th->source;
		f->dport = th->dest;
		f->policy_port = th->dest;
		f->tcp_flags = ((__u8 *)th)[13];
		f->has_ports = 1;
		break;
	}
	case IPPROTO_UDP:
	case IPPROTO_SCTP: {
		/* SCTP's ports sit where UDP's do. */
		struct udphdr *uh = l4;
		if ((void *)(uh + 1) > end)
			return PARSE_BAD;
		f->sport = uh->source;
		f->dport = uh->dest;
		f->policy_port = uh->dest;
		f->has_ports = 1;
		break;
	}
	case IPPROTO_ICMP: {
		struct icmp_head *ih = l4;
		if ((void *)(ih + 1) > end)
			return PARSE_BAD;
		f->policy_port = bpf_htons(ih->type);
		/* The echo id stands where a reply's reversed tuple finds it. */
		if (ih->type == ICMP_ECHO) {
			f->sport = ih->id;
			f->dport = 0;
		} else if (ih->type == ICMP_ECHOREPLY) {
			f->sport = 0;
			f->dport = ih->id;
		}
		f->has_ports = 1;
		break;
	}
	default:
		break;
	}
	return PARSE_IPV4;
}

#endif
