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
 *
 * The concerns live in lib/: maps.h, parse.h, eps.h, conntrack.h, policy.h,
 * proxy.h, events.h, metrics.h; abi.h is what the agent shares with them.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

#include "lib/abi.h"
#include "lib/maps.h"
#include "lib/parse.h"
#include "lib/eps.h"
#include "lib/conntrack.h"
#include "lib/policy.h"
#include "lib/proxy.h"
#include "lib/events.h"
#include "lib/metrics.h"

static __always_inline int handle(struct __sk_buff *skb, __u8 dir)
{
	struct mbr_endpoint *ep = lookup_endpoint(skb->ifindex);
	struct mbr_policy_value pv = {};
	struct mbr_ct_value *ct;
	struct mbr_ct_key tuple;
	struct flow f = {};
	__u16 reason = 0;
	__u32 peer_id;
	__u64 now;

	if (!ep)
		return TC_ACT_OK; /* not an endpoint's interface */
	switch (parse(skb, &f)) {
	case PARSE_IPV4:
		break;
	case PARSE_OTHER_L3:
		return TC_ACT_OK;
	case PARSE_IPV6:
		count(MBR_DROP_UNSUPPORTED_L3, dir, skb->len);
		return TC_ACT_SHOT;
	default:
		f.len = skb->len;
		return drop(skb, &f, ep, dir, MBR_DROP_INVALID_PACKET, 0, 0);
	}
	if (dir == MBR_DIR_EGRESS && f.saddr != ep->ipv4)
		return drop(skb, &f, ep, dir, MBR_DROP_INVALID_SIP, ipcache_identity(f.daddr), 0);

	now = bpf_ktime_get_ns();
	ct_tuple(&tuple, &f, dir, ep->ep_id);
	switch (ct_lookup(&tuple, &f, now, &ct)) {
	case CT_ESTABLISHED:
		proxy_redirect(skb, ct->l7, ct->proxy_port);
		count(0, dir, f.len);
		return TC_ACT_OK;
	case CT_REPLY:
		count(0, dir, f.len);
		return TC_ACT_OK;
	case CT_NEW:
		break;
	}

	/* A new connection: the policy decides. */
	peer_id = ipcache_identity(dir == MBR_DIR_EGRESS ? f.daddr : f.saddr);
	if (!policy_check(ep, dir, peer_id, &f, &pv, &reason))
		return drop(skb, &f, ep, dir, reason, peer_id, &pv);
	ct_create(&tuple, &f, now, peer_id, &pv);
	proxy_redirect(skb, pv.l7, pv.proxy_port);
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
