/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Events for Hubble (mbr_events, struct mbr_event in abi.h): one on each new
 * connection (TRACE) and on each drop (DROP). Replies and later packets of a
 * connection emit none. An event the ring buffer has no room for is lost,
 * and counted (MBR_METRICS_LOST_EVENTS), never silently.
 */
#ifndef MBR_EVENTS_H
#define MBR_EVENTS_H

#include <linux/pkt_cls.h>

#include "maps.h"
#include "metrics.h"
#include "parse.h"

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

/* Drops the packet: counted, then reported with the entry that decided (pv, may be NULL). */
static __always_inline int drop(struct __sk_buff *skb, const struct flow *f, const struct mbr_endpoint *ep, __u8 dir,
				__u16 reason, __u32 peer_id, const struct mbr_policy_value *pv)
{
	count(reason, dir, f->len);
	emit(skb, f, ep, dir, MBR_EVENT_DROP, reason, peer_id, pv, 0);
	return TC_ACT_SHOT;
}

/*
 * A connection the L7 redirect refused (no proxy listens): counted and
 * reported as a drop for reason, while the packet itself, turned into a
 * reset, leaves with verdict.
 */
static __always_inline int refused(struct __sk_buff *skb, const struct flow *f, const struct mbr_endpoint *ep, __u8 dir,
				   __u16 reason, __u32 peer_id, const struct mbr_policy_value *pv, int verdict)
{
	count(reason, dir, f->len);
	emit(skb, f, ep, dir, MBR_EVENT_DROP, reason, peer_id, pv, 0);
	return verdict;
}

#endif
