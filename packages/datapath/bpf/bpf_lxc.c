// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The endpoint programs, attached to the host side of every pod's veth:
 *   from_container  tc ingress: packets the pod sends — anti-spoofing, then
 *                   the pod's egress policy;
 *   to_container    tc egress: packets delivered to the pod — its ingress
 *                   policy.
 * Each program finds its endpoint by skb->ifindex (the host-side veth), so
 * one loaded object serves every endpoint. And one more, on the pod
 * network's router link:
 *   from_hairpin    tc ingress: the ingress L7 redirect's second half, the
 *                   packets to_container turned back into the host stack
 *                   for the proxy (lib/proxy.h).
 * And on the host side of each test host's veth (traffic from outside):
 *   from_outside    tc ingress: a connection to a local endpoint whose
 *                   ingress rule is L7 is taken to the proxy before the
 *                   host forwards it; everything else is to_container's.
 *
 * Order of checks for a packet (per program):
 *   1. not IPv4 (ARP...) passes; IPv6 is dropped (not supported yet);
 *   2. from_container: source address must be the endpoint's (else 132);
 *   3. conntrack: a packet of a known connection, in either direction,
 *      passes without a policy lookup (replies are always allowed);
 *   4. otherwise it opens a connection: the policy entry decides (deny 181,
 *      no allow under default deny 133), and an allowed one is recorded;
 *   5. a packet of a connection whose entry names L7 and a proxy port is
 *      steered to the proxy, unless the proxy itself sent it (proxy.h).
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
	int verdict = TC_ACT_OK;
	__u16 reason = 0;
	struct mbr_policy_value peer_pv = {};
	struct mbr_endpoint peer = {};
	int from_proxy;
	__u8 flags;
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
		if (proxy_from_proxy(skb)) {
			/* The proxy's upstream on the tuple of a connection already known (it took the client's port). */
			if (!(ct->flags & MBR_CT_F_PROXY_UPSTREAM))
				ct->flags |= MBR_CT_F_PROXY_UPSTREAM;
		} else if (ct->l7 && ct->proxy_port) {
			verdict = proxy_steer(skb, &f, dir == MBR_DIR_INGRESS, ct->proxy_port, &reason);
			if (reason) {
				pv.cookie = ct->cookie;
				pv.l7 = ct->l7;
				pv.proxy_port = ct->proxy_port;
				return refused(skb, &f, ep, dir, reason, ct->peer_identity, &pv, verdict);
			}
		}
		count(0, dir, f.len);
		return verdict;
	case CT_REPLY:
		if (ct->flags & MBR_CT_F_PROXY_UPSTREAM)
			skb->mark = MBR_MARK_TO_PROXY; /* to the proxy's upstream socket, not the pod it borrowed from */
		count(0, dir, f.len);
		return TC_ACT_OK;
	case CT_NEW:
		break;
	}

	/* A new connection: the policy decides. */
	peer_id = ipcache_identity(dir == MBR_DIR_EGRESS ? f.daddr : f.saddr);
	if (!policy_check(ep, dir, peer_id, &f, &pv, &reason))
		return drop(skb, &f, ep, dir, reason, peer_id, &pv);
	from_proxy = proxy_from_proxy(skb);
	flags = from_proxy ? MBR_CT_F_PROXY_UPSTREAM : 0;
	if (dir == MBR_DIR_EGRESS && !from_proxy && !(pv.l7 && pv.proxy_port) &&
	    proxy_peer_ingress(&f, ep->identity, &peer, &peer_pv)) {
		/* The destination's ingress L7 rule: the proxy takes the connection here (proxy.h). */
		pv.l7 = peer_pv.l7;
		pv.proxy_port = peer_pv.proxy_port;
		flags |= MBR_CT_F_PEER_L7;
	}
	ct_create(&tuple, &f, now, peer_id, &pv, flags);
	if (pv.l7 && pv.proxy_port && !from_proxy) {
		verdict = proxy_steer(skb, &f, dir == MBR_DIR_INGRESS, pv.proxy_port, &reason);
		if (reason)
			return refused(skb, &f, ep, dir, reason, peer_id, &pv, verdict);
	}
	count(0, dir, f.len);
	emit(skb, &f, ep, dir, MBR_EVENT_TRACE, 0, peer_id, &pv, 0);
	return verdict;
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

/*
 * At tc ingress of the router link: the packets to_container hairpinned
 * (marked MBR_MARK_TO_PROXY). A SYN is assigned to the proxy's listener, or
 * refused with a reset the host routes back to the client; every other
 * packet goes on with its mark, which policy routing delivers on this host.
 * Unmarked packets are not this program's.
 */
SEC("tc")
int from_hairpin(struct __sk_buff *skb)
{
	struct mbr_policy_value pv = {};
	struct mbr_ipcache_value *dst;
	struct mbr_ipcache_key k = { .prefixlen = 32 };
	struct mbr_endpoint ep = {};
	struct mbr_ct_value *ct;
	struct mbr_ct_key tuple;
	struct mbr_config *cfg;
	struct flow f = {};
	__u16 reason;

	if ((skb->mark & MBR_MARK_MASK) != MBR_MARK_TO_PROXY)
		return TC_ACT_OK;
	if (parse(skb, &f) != PARSE_IPV4 || !tcp_opening(&f))
		return TC_ACT_OK;
	cfg = proxy_config();
	reason = cfg && cfg->proxy_listener ? proxy_assign(skb, &f, cfg->proxy_listener, skb->mark >> 16)
					    : MBR_DROP_PROXY_LOOKUP_FAILED;
	if (!reason)
		return TC_ACT_OK;

	/* Refused: reported as the destination endpoint's ingress drop, with the entry that sent it here. */
	k.addr = f.daddr;
	dst = bpf_map_lookup_elem(&mbr_ipcache, &k);
	ep.ep_id = dst ? dst->ep_id : 0;
	ep.ipv4 = f.daddr;
	ep.identity = dst ? dst->identity : MBR_ID_WORLD;
	ct_tuple(&tuple, &f, MBR_DIR_INGRESS, ep.ep_id);
	ct = bpf_map_lookup_elem(&mbr_ct, &tuple);
	if (ct) {
		pv.cookie = ct->cookie;
		pv.l7 = ct->l7;
		pv.proxy_port = ct->proxy_port;
	}
	count(reason, MBR_DIR_INGRESS, f.len);
	emit(skb, &f, &ep, MBR_DIR_INGRESS, MBR_EVENT_DROP, reason, ipcache_identity(f.saddr), &pv, 0);
	/* The host forwards the reset to the client like any packet between pods. */
	skb->mark = 0;
	if (tcp_syn_to_reset(skb, 0) < 0)
		return TC_ACT_SHOT;
	return TC_ACT_OK;
}

/*
 * At tc ingress of a test host's veth (traffic from outside the cluster):
 * a TCP connection to a local endpoint whose ingress entry is L7 is taken
 * to the proxy here, before the host forwards it (see proxy_peer_ingress),
 * its conntrack entry recorded as to_container would (the destination's
 * ingress). Every other packet goes on to to_container, which judges it.
 */
SEC("tc")
int from_outside(struct __sk_buff *skb)
{
	struct mbr_policy_value pv = {};
	struct mbr_endpoint ep = {};
	struct mbr_ct_value *ct;
	struct mbr_ct_key tuple;
	struct flow f = {};
	__u16 reason = 0;
	__u32 peer_id;
	int verdict;
	__u64 now;

	if (parse(skb, &f) != PARSE_IPV4 || f.proto != IPPROTO_TCP)
		return TC_ACT_OK;
	now = bpf_ktime_get_ns();
	if (!tcp_opening(&f)) {
		struct mbr_ipcache_key k = { .prefixlen = 32, .addr = f.daddr };
		struct mbr_ipcache_value *dst = bpf_map_lookup_elem(&mbr_ipcache, &k);

		if (!dst || !dst->ep_id)
			return TC_ACT_OK;
		ct_tuple(&tuple, &f, MBR_DIR_INGRESS, dst->ep_id);
		ct = bpf_map_lookup_elem(&mbr_ct, &tuple);
		/* Only the proxy's connections are this program's; to_container accounts the rest. */
		if (!ct_live(ct, now) || !ct->l7 || !ct->proxy_port)
			return TC_ACT_OK;
		ct->packets_fwd++;
		ct_refresh(ct, &f, now);
		proxy_mark(skb, ct->proxy_port);
		count(0, MBR_DIR_INGRESS, f.len);
		return TC_ACT_OK;
	}
	peer_id = ipcache_identity(f.saddr);
	if (!proxy_peer_ingress(&f, peer_id, &ep, &pv))
		return TC_ACT_OK;
	ct_tuple(&tuple, &f, MBR_DIR_INGRESS, ep.ep_id);
	ct_create(&tuple, &f, now, peer_id, &pv, 0);
	verdict = proxy_steer(skb, &f, 0, pv.proxy_port, &reason);
	if (reason)
		return refused(skb, &f, &ep, MBR_DIR_INGRESS, reason, peer_id, &pv, verdict);
	count(0, MBR_DIR_INGRESS, f.len);
	emit(skb, &f, &ep, MBR_DIR_INGRESS, MBR_EVENT_TRACE, 0, peer_id, &pv, 0);
	return verdict;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
