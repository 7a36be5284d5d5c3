// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The endpoint programs, attached to the host side of every pod's veth:
 *   from_container  tc ingress: packets the pod sends — anti-spoofing, then
 *                   the pod's egress policy;
 *   to_container    tc egress: packets delivered to the pod — its ingress
 *                   policy.
 * Each program finds its endpoint by skb->ifindex (the host-side veth), so
 * one loaded object serves every endpoint.
 *
 * Order of checks for a packet (per program):
 *   1. not IPv4 (ARP...) passes; IPv6 is dropped (not supported yet);
 *   2. from_container: source address must be the endpoint's (else 132);
 *   3. conntrack: a packet of a known connection, in either direction,
 *      passes without a policy lookup (replies are always allowed);
 *   4. otherwise it opens a connection: the policy entry decides (deny 181,
 *      no allow under default deny 133), and an allowed one is recorded.
 * A TCP packet without SYN that matches no connection is judged like a new
 * one, so a crafted ACK cannot reach a port the policy closes.
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

#include "lib/abi.h"

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

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct mbr_endpoint);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mbr_endpoints SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 65536);
	__type(key, struct mbr_ipcache_key);
	__type(value, struct mbr_ipcache_value);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mbr_ipcache SEC(".maps");

/*
 * The inner map template gives sizes, not types: clang emits only a forward
 * declaration for types reached through the outer map's value pointer.
 */
struct mbr_policy_inner {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 65536);
	__uint(key_size, sizeof(struct mbr_policy_key));
	__uint(value_size, sizeof(struct mbr_policy_value));
	__uint(map_flags, BPF_F_NO_PREALLOC);
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__array(values, struct mbr_policy_inner);
} mbr_policy SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 262144);
	__type(key, struct mbr_ct_key);
	__type(value, struct mbr_ct_value);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mbr_ct SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mbr_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MBR_METRICS_ENTRIES);
	__type(key, __u32);
	__type(value, struct mbr_metrics_value);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mbr_metrics SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct mbr_config);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mbr_config SEC(".maps");

/* What a packet carries that policy and conntrack need. */
struct flow {
	__u32 saddr, daddr;
	__u16 sport, dport;	  /* conntrack ports (ICMP echo id, see abi.h) */
	__u16 policy_port;	  /* network order; the ICMP type for ICMP */
	__u8 proto;
	__u8 tcp_flags;
	__u8 has_ports;
	__u32 len;
};

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_ACK 0x10

static __always_inline void count(__u16 reason, __u8 dir, __u32 len)
{
	__u32 idx = (__u32)reason * 2 + dir;
	struct mbr_metrics_value *m;

	if (idx >= MBR_METRICS_ENTRIES)
		return;
	m = bpf_map_lookup_elem(&mbr_metrics, &idx);
	if (m) {
		m->packets++;
		m->bytes += len;
	}
}

static __always_inline void emit(struct __sk_buff *skb, const struct flow *f, const struct mbr_endpoint *ep, __u8 dir,
				 __u8 type, __u16 reason, __u32 peer_id, const struct mbr_policy_value *pv, __u8 is_reply)
{
	struct mbr_event ev = {};
	__u32 zero = 0;
	struct mbr_config *cfg = bpf_map_lookup_elem(&mbr_config, &zero);
	__u64 flags = BPF_RB_NO_WAKEUP;

	ev.ts_ns = bpf_ktime_get_ns();
	ev.type = type;
	ev.direction = dir;
	ev.proto = f->proto;
	ev.tcp_flags = f->tcp_flags;
	ev.verdict = type == MBR_EVENT_DROP ? MBR_VERDICT_DROPPED : MBR_VERDICT_FORWARDED;
	ev.is_reply = is_reply;
	ev.drop_reason = reason;
	ev.ep_id = ep->ep_id;
	ev.src_identity = dir == MBR_DIR_EGRESS ? ep->identity : peer_id;
	ev.dst_identity = dir == MBR_DIR_EGRESS ? peer_id : ep->identity;
	ev.saddr = f->saddr;
	ev.daddr = f->daddr;
	ev.sport = f->has_ports ? f->sport : 0;
	ev.dport = f->policy_port;
	ev.ifindex = skb->ifindex;
	ev.len = f->len;
	if (pv) {
		ev.cookie = pv->cookie;
		ev.l7 = pv->l7;
		ev.proxy_port = pv->proxy_port;
	}
	/*
	 * Batched wakeups: waking the reader per event doubles round-trip
	 * latency, so the reader polls and is woken only when data piles up.
	 */
	if (cfg && cfg->wakeup_bytes && bpf_ringbuf_query(&mbr_events, BPF_RB_AVAIL_DATA) >= cfg->wakeup_bytes)
		flags = BPF_RB_FORCE_WAKEUP;
	if (bpf_ringbuf_output(&mbr_events, &ev, sizeof(ev), flags) < 0)
		count(255, 0, 0); /* MBR_METRICS_LOST_EVENTS: lost, and counted */
}

/* Parse Ethernet/IPv4/L4. Returns 0 when it is IPv4, 1 for other L3, <0 for a bad packet. */
static __always_inline int parse(struct __sk_buff *skb, struct flow *f)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip;
	__u32 ihl;

	if ((void *)(eth + 1) > end)
		return -1;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return eth->h_proto == bpf_htons(ETH_P_IPV6) ? 2 : 1;
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > end)
		return -1;
	ihl = ip->ihl * 4;
	if (ihl < sizeof(*ip))
		return -1;
	f->saddr = ip->saddr;
	f->daddr = ip->daddr;
	f->proto = ip->protocol;
	f->len = skb->len;
	/* Later fragments carry no L4 header: judged with port 0. */
	if (ip->frag_off & bpf_htons(0x1fff))
		return 0;
	void *l4 = (void *)ip + ihl;
	switch (ip->protocol) {
	case IPPROTO_TCP: {
		struct tcphdr *th = l4;
		if ((void *)(th + 1) > end)
			return -1;
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
			return -1;
		f->sport = uh->source;
		f->dport = uh->dest;
		f->policy_port = uh->dest;
		f->has_ports = 1;
		break;
	}
	case IPPROTO_ICMP: {
		struct icmp_head *ih = l4;
		if ((void *)(ih + 1) > end)
			return -1;
		f->policy_port = bpf_htons(ih->type);
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
	return 0;
}

static __always_inline __u32 ipcache_identity(__u32 addr)
{
	struct mbr_ipcache_key k = { .prefixlen = 32, .addr = addr };
	struct mbr_ipcache_value *v = bpf_map_lookup_elem(&mbr_ipcache, &k);

	return v ? v->identity : MBR_ID_WORLD;
}

static __always_inline __u64 ct_lifetime(const struct flow *f, __u8 flags)
{
	if (f->proto != IPPROTO_TCP)
		return MBR_CT_OTHER_S * 1000000000ull;
	if ((f->tcp_flags & (TCP_FIN | TCP_RST)) || (flags & MBR_CT_F_CLOSING))
		return MBR_CT_TCP_CLOSING_S * 1000000000ull;
	if ((f->tcp_flags & TCP_SYN) && !(flags & MBR_CT_F_SEEN_REPLY))
		return MBR_CT_TCP_SYN_S * 1000000000ull;
	return MBR_CT_TCP_ESTABLISHED_S * 1000000000ull;
}

/*
 * The two lookups of the policy map (see packages/policy/src/policy-map.ts):
 * the peer's identity and any identity, each longest-prefix; a deny in either
 * wins, an allow in either allows, L7-free in either frees.
 * Returns 1 allowed, 0 denied; *out holds the deciding entry, *reason the drop reason.
 */
static __always_inline int policy_check(const struct mbr_endpoint *ep, __u8 dir, __u32 peer_id, const struct flow *f,
					struct mbr_policy_value *out, __u16 *reason)
{
	__u32 enforced = dir == MBR_DIR_EGRESS ? MBR_EP_F_EGRESS_ENFORCED : MBR_EP_F_INGRESS_ENFORCED;
	__u32 default_deny = dir == MBR_DIR_EGRESS ? MBR_EP_F_EGRESS_DEFAULT_DENY : MBR_EP_F_INGRESS_DEFAULT_DENY;
	struct mbr_policy_value *a, *b, *meta;
	struct mbr_policy_key k = {};
	__u32 forced = ep->flags, mflags = 0;
	void *inner;

	inner = bpf_map_lookup_elem(&mbr_policy, &ep->ep_id);
	if (inner) {
		/* Enforcement travels with the entries: both change in one map swap. */
		k.prefixlen = MBR_POLICY_FIXED_BITS + 24;
		k.identity = bpf_htonl(MBR_POLICY_META_IDENTITY);
		k.direction = dir;
		meta = bpf_map_lookup_elem(inner, &k);
		if (meta)
			mflags = meta->cookie;
	}
	if (!(forced & enforced) && !(mflags & MBR_POLICY_META_ENFORCED))
		return 1;
	if (!inner)
		goto none;
	k.prefixlen = MBR_POLICY_FIXED_BITS + 24;
	k.identity = bpf_htonl(peer_id);
	k.direction = dir;
	k.proto = f->proto;
	k.dport = f->policy_port;
	a = bpf_map_lookup_elem(inner, &k);
	k.identity = 0;
	b = bpf_map_lookup_elem(inner, &k);
	if ((a && a->deny) || (b && b->deny)) {
		*out = (a && a->deny) ? *a : *b;
		*reason = MBR_DROP_POLICY_DENY;
		return 0;
	}
	if (a || b) {
		if (a && b && a->l7 && !b->l7)
			*out = *b;
		else
			*out = a ? *a : *b;
		return 1;
	}
none:
	if ((forced & default_deny) || (mflags & MBR_POLICY_META_DEFAULT_DENY)) {
		*reason = MBR_DROP_POLICY;
		return 0;
	}
	return 1;
}

static __always_inline int handle(struct __sk_buff *skb, __u8 dir)
{
	__u32 ifindex = skb->ifindex;
	struct mbr_endpoint *ep = bpf_map_lookup_elem(&mbr_endpoints, &ifindex);
	struct mbr_policy_value pv = {};
	struct mbr_ct_value *ct, nct = {};
	struct mbr_ct_key key = {};
	struct flow f = {};
	__u64 now;
	__u16 reason = 0;
	__u32 peer_addr, peer_id;
	int r;

	if (!ep)
		return TC_ACT_OK; /* not an endpoint's interface */
	r = parse(skb, &f);
	if (r == 1)
		return TC_ACT_OK; /* ARP and other non-IP traffic */
	if (r == 2) {
		count(MBR_DROP_UNSUPPORTED_L3, dir, skb->len);
		return TC_ACT_SHOT;
	}
	if (r < 0) {
		f.len = skb->len;
		count(MBR_DROP_INVALID_PACKET, dir, skb->len);
		emit(skb, &f, ep, dir, MBR_EVENT_DROP, MBR_DROP_INVALID_PACKET, 0, 0, 0);
		return TC_ACT_SHOT;
	}
	if (dir == MBR_DIR_EGRESS && f.saddr != ep->ipv4) {
		count(MBR_DROP_INVALID_SIP, dir, f.len);
		emit(skb, &f, ep, dir, MBR_EVENT_DROP, MBR_DROP_INVALID_SIP, ipcache_identity(f.daddr), 0, 0);
		return TC_ACT_SHOT;
	}
	now = bpf_ktime_get_ns();

	/* A packet of a connection this endpoint opened... */
	key.saddr = f.saddr;
	key.daddr = f.daddr;
	key.sport = f.sport;
	key.dport = f.dport;
	key.proto = f.proto;
	key.direction = dir;
	key.ep_id = ep->ep_id;
	ct = bpf_map_lookup_elem(&mbr_ct, &key);
	if (ct && ct->expires_ns > now) {
		ct->packets_fwd++;
		if (f.tcp_flags & (TCP_FIN | TCP_RST))
			ct->flags |= MBR_CT_F_CLOSING;
		ct->expires_ns = now + ct_lifetime(&f, ct->flags);
		if (ct->l7 && ct->proxy_port)
			skb->mark = ((__u32)ct->proxy_port << 16) | MBR_MARK_TO_PROXY;
		count(0, dir, f.len);
		return TC_ACT_OK;
	}
	/* ...or a reply to one opened towards it (always allowed). */
	key.saddr = f.daddr;
	key.daddr = f.saddr;
	key.sport = f.dport;
	key.dport = f.sport;
	key.direction = dir == MBR_DIR_EGRESS ? MBR_DIR_INGRESS : MBR_DIR_EGRESS;
	ct = bpf_map_lookup_elem(&mbr_ct, &key);
	if (ct && ct->expires_ns > now) {
		ct->packets_rev++;
		ct->flags |= MBR_CT_F_SEEN_REPLY;
		if (f.tcp_flags & (TCP_FIN | TCP_RST))
			ct->flags |= MBR_CT_F_CLOSING;
		ct->expires_ns = now + ct_lifetime(&f, ct->flags);
		count(0, dir, f.len);
		return TC_ACT_OK;
	}

	/* A new connection: the policy decides. */
	peer_addr = dir == MBR_DIR_EGRESS ? f.daddr : f.saddr;
	peer_id = ipcache_identity(peer_addr);
	if (!policy_check(ep, dir, peer_id, &f, &pv, &reason)) {
		count(reason, dir, f.len);
		emit(skb, &f, ep, dir, MBR_EVENT_DROP, reason, peer_id, &pv, 0);
		return TC_ACT_SHOT;
	}
	key.saddr = f.saddr;
	key.daddr = f.daddr;
	key.sport = f.sport;
	key.dport = f.dport;
	key.direction = dir;
	nct.created_ns = now;
	nct.expires_ns = now + ct_lifetime(&f, 0);
	nct.peer_identity = peer_id;
	nct.cookie = pv.cookie;
	nct.packets_fwd = 1;
	nct.proxy_port = pv.proxy_port;
	nct.l7 = pv.l7;
	bpf_map_update_elem(&mbr_ct, &key, &nct, BPF_ANY);
	if (pv.l7 && pv.proxy_port)
		skb->mark = ((__u32)pv.proxy_port << 16) | MBR_MARK_TO_PROXY;
	count(0, dir, f.len);
	emit(skb, &f, ep, dir, MBR_EVENT_TRACE, 0, peer_id, &pv, 0);
	return TC_ACT_OK;
}

SEC("tc")
int from_container(struct __sk_buff *skb)
{
	return handle(skb, MBR_DIR_EGRESS);
}

SEC("tc")
int to_container(struct __sk_buff *skb)
{
	return handle(skb, MBR_DIR_INGRESS);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
