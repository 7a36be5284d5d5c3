/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The policy verdict of a packet that opens a connection, from the
 * endpoint's policy map (mbr_policy: endpoint id -> LPM trie, see
 * packages/policy/src/policy-map.ts and struct mbr_policy_key in abi.h).
 *
 * Enforcement of a direction is on when the endpoint's flags force it
 * (MBR_EP_F_*, e.g. quarantine) or when the map's meta entry says so
 * (MBR_POLICY_META_*); off, everything passes. Enforced, two longest-prefix
 * lookups decide — the peer's identity and any identity (0), the second
 * skipped when the meta entry says the direction has no such entry:
 *   1. a deny in either wins (181), whatever the other allows;
 *   2. else an allow in either allows; when both allow, an L7-free entry
 *      decides over one naming an L7 parser (no redirect), else the peer's;
 *   3. else, under default deny (flags or meta entry), dropped (133);
 *      without it (only deny rules select the endpoint), allowed.
 */
#ifndef MBR_POLICY_H
#define MBR_POLICY_H

#include <bpf/bpf_endian.h>

#include "maps.h"
#include "parse.h"

/* The MBR_POLICY_META_* bits of a direction; 0 when the map has no meta entry. */
static __always_inline __u32 policy_meta(void *inner, __u8 dir)
{
	struct mbr_policy_key k = {
		.prefixlen = MBR_POLICY_FIXED_BITS + 24,
		.identity = bpf_htonl(MBR_POLICY_META_IDENTITY),
		.direction = dir,
	};
	struct mbr_policy_value *meta = bpf_map_lookup_elem(inner, &k);

	return meta ? meta->cookie : 0;
}

/*
 * Returns 1 allowed, 0 denied; *out holds the deciding entry (left alone
 * when none decided), *reason the drop reason.
 */
static __always_inline int policy_check(const struct mbr_endpoint *ep, __u8 dir, __u32 peer_id, const struct flow *f,
					struct mbr_policy_value *out, __u16 *reason)
{
	__u32 enforced = dir == MBR_DIR_EGRESS ? MBR_EP_F_EGRESS_ENFORCED : MBR_EP_F_INGRESS_ENFORCED;
	__u32 default_deny = dir == MBR_DIR_EGRESS ? MBR_EP_F_EGRESS_DEFAULT_DENY : MBR_EP_F_INGRESS_DEFAULT_DENY;
	struct mbr_policy_value *a, *b;
	struct mbr_policy_key k = {};
	__u32 forced = ep->flags, meta = 0;
	void *inner;

	inner = bpf_map_lookup_elem(&mbr_policy, &ep->ep_id);
	/* Enforcement travels with the entries: both change in one map swap. */
	if (inner)
		meta = policy_meta(inner, dir);
	if (!(forced & enforced) && !(meta & MBR_POLICY_META_ENFORCED))
		return 1;
	if (inner) {
		k.prefixlen = MBR_POLICY_FIXED_BITS + 24;
		k.identity = bpf_htonl(peer_id);
		k.direction = dir;
		k.proto = f->proto;
		k.dport = f->policy_port;
		a = bpf_map_lookup_elem(inner, &k);
		b = 0;
		if (!(meta & MBR_POLICY_META_NO_WILDCARD)) {
			k.identity = 0;
			b = bpf_map_lookup_elem(inner, &k);
		}
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
	}
	if ((forced & default_deny) || (meta & MBR_POLICY_META_DEFAULT_DENY)) {
		*reason = MBR_DROP_POLICY;
		return 0;
	}
	return 1;
}

#endif
