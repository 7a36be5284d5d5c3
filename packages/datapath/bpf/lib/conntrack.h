/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Conntrack (mbr_ct; struct mbr_ct_key/mbr_ct_value in abi.h). An entry is
 * one connection as one endpoint saw it open: the tuple of its first packet,
 * the direction it went and the endpoint's id. A packet of the connection
 * finds the entry with its own tuple (CT_ESTABLISHED); a reply finds it with
 * the reversed tuple — addresses and ports swapped, the other direction
 * (CT_REPLY). Everything else is CT_NEW and goes to the policy.
 *
 * Invariants:
 *   - only ct_create() makes entries, and only for a packet the policy
 *     allowed: a packet that finds a live entry needs no policy lookup;
 *   - a TCP packet without SYN that finds nothing is CT_NEW too, so a
 *     crafted ACK is judged by the policy, never taken for a reply;
 *   - an entry whose expires_ns has passed is not used (the packet is
 *     CT_NEW, and recorded anew when allowed); the agent's sweep deletes
 *     such entries, the programs never do;
 *   - the entry keeps what the first packet's verdict decided (the policy
 *     entry's cookie, L7 parser and proxy port, and whether the L7 proxy
 *     opened it: MBR_CT_F_PROXY_UPSTREAM), so later packets follow it
 *     without a policy lookup. State of a later translation (service NAT)
 *     belongs in the entry too, found by the same two lookups.
 */
#ifndef MBR_CONNTRACK_H
#define MBR_CONNTRACK_H

#include "maps.h"
#include "parse.h"

#define NSEC_PER_SEC 1000000000ull

/* What ct_lookup() found (Cilium's names). */
enum ct_status {
	CT_NEW,
	CT_ESTABLISHED,
	CT_REPLY,
};

/* The tuple of a packet as endpoint ep_id sees it going in direction dir. */
static __always_inline void ct_tuple(struct mbr_ct_key *t, const struct flow *f, __u8 dir, __u32 ep_id)
{
	*t = (struct mbr_ct_key){
		.saddr = f->saddr,
		.daddr = f->daddr,
		.sport = f->sport,
		.dport = f->dport,
		.proto = f->proto,
		.direction = dir,
		.ep_id = ep_id,
	};
}

/* The tuple under which the connection a reply answers was recorded. */
static __always_inline void ct_tuple_reverse(struct mbr_ct_key *rev, const struct mbr_ct_key *t)
{
	*rev = (struct mbr_ct_key){
		.saddr = t->daddr,
		.daddr = t->saddr,
		.sport = t->dport,
		.dport = t->sport,
		.proto = t->proto,
		.direction = t->direction == MBR_DIR_EGRESS ? MBR_DIR_INGRESS : MBR_DIR_EGRESS,
		.ep_id = t->ep_id,
	};
}

/*
 * How long an entry lives after this packet (Cilium's defaults, abi.h): a
 * closing TCP connection (FIN or RST seen either way) briefly, a SYN while
 * no reply was seen for the SYN timeout, any other TCP packet for hours,
 * other protocols for a minute.
 */
static __always_inline __u64 ct_lifetime(const struct flow *f, __u8 flags)
{
	if (f->proto != IPPROTO_TCP)
		return MBR_CT_OTHER_S * NSEC_PER_SEC;
	if ((f->tcp_flags & (TCP_FIN | TCP_RST)) || (flags & MBR_CT_F_CLOSING))
		return MBR_CT_TCP_CLOSING_S * NSEC_PER_SEC;
	if ((f->tcp_flags & TCP_SYN) && !(flags & MBR_CT_F_SEEN_REPLY))
		return MBR_CT_TCP_SYN_S * NSEC_PER_SEC;
	return MBR_CT_TCP_ESTABLISHED_S * NSEC_PER_SEC;
}

/* Call after a reply set MBR_CT_F_SEEN_REPLY: the lifetime depends on it. */
static __always_inline void ct_refresh(struct mbr_ct_value *ct, const struct flow *f, __u64 now)
{
	if (f->tcp_flags & (TCP_FIN | TCP_RST))
		ct->flags |= MBR_CT_F_CLOSING;
	ct->expires_ns = now + ct_lifetime(f, ct->flags);
}

static __always_inline int ct_live(const struct mbr_ct_value *ct, __u64 now)
{
	return ct && ct->expires_ns > now;
}

/*
 * Looks the packet up by its tuple, then by the reversed one, and accounts
 * it to the live entry it finds (*entry, left alone for CT_NEW). A SYN-ACK
 * answers a SYN: its reversed tuple is tried first, which spares every new
 * TCP connection a lookup in both endpoints' programs. The answer is the
 * same either way: both tuples are tried before a packet is CT_NEW.
 */
static __always_inline enum ct_status ct_lookup(const struct mbr_ct_key *tuple, const struct flow *f, __u64 now,
						struct mbr_ct_value **entry)
{
	int synack = f->proto == IPPROTO_TCP && (f->tcp_flags & (TCP_SYN | TCP_ACK)) == (TCP_SYN | TCP_ACK);
	struct mbr_ct_value *fwd = 0, *rev_ct;
	struct mbr_ct_key rev;

	if (!synack) {
		fwd = bpf_map_lookup_elem(&mbr_ct, tuple);
		if (ct_live(fwd, now))
			goto established;
	}
	ct_tuple_reverse(&rev, tuple);
	rev_ct = bpf_map_lookup_elem(&mbr_ct, &rev);
	if (ct_live(rev_ct, now)) {
		rev_ct->packets_rev++;
		rev_ct->flags |= MBR_CT_F_SEEN_REPLY;
		ct_refresh(rev_ct, f, now);
		*entry = rev_ct;
		return CT_REPLY;
	}
	if (synack) {
		fwd = bpf_map_lookup_elem(&mbr_ct, tuple);
		if (ct_live(fwd, now))
			goto established;
	}
	return CT_NEW;
established:
	fwd->packets_fwd++;
	ct_refresh(fwd, f, now);
	*entry = fwd;
	return CT_ESTABLISHED;
}

/*
 * Records the connection this packet opens, allowed by policy entry pv,
 * towards peer_id, with MBR_CT_F_* flags (MBR_CT_F_PROXY_UPSTREAM or 0).
 */
static __always_inline void ct_create(const struct mbr_ct_key *tuple, const struct flow *f, __u64 now, __u32 peer_id,
				      const struct mbr_policy_value *pv, __u8 flags)
{
	/* Zeroed whole: the update reads the tail padding too, and the verifier refuses uninitialised stack. */
	struct mbr_ct_value ct = {};

	ct.created_ns = now;
	ct.expires_ns = now + ct_lifetime(f, 0);
	ct.peer_identity = peer_id;
	ct.cookie = pv->cookie;
	ct.packets_fwd = 1;
	ct.proxy_port = pv->proxy_port;
	ct.l7 = pv->l7;
	ct.flags = flags;
	bpf_map_update_elem(&mbr_ct, tuple, &ct, BPF_ANY);
}

#endif
