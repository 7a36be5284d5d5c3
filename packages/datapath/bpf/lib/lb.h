/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Service load balancing at the socket (Cilium's "socket-LB"): the maps of
 * abi_lb.h and the lookups of bpf_sock.c. The maps are pinned by name under
 * the agent's pin root, so a restarted agent's programs share them with the
 * ones still attached, and an agent with another pin root has maps (and so
 * frontends) of its own. A compilation unit includes this once.
 */
#ifndef MBR_LB_H
#define MBR_LB_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "abi_lb.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct mbr_lb4_key);
	__type(value, struct mbr_lb4_service);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mbr_lb4_svc SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, struct mbr_lb4_backend);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mbr_lb4_backend SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct mbr_lb4_revnat_key);
	__type(value, struct mbr_lb4_revnat_value);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mbr_lb4_rev_sk SEC(".maps");

/* The master entry of a frontend; NULL: not a frontend (of this agent). */
static __always_inline struct mbr_lb4_service *
lb4_lookup_service(struct mbr_lb4_key *key)
{
	key->backend_slot = 0;
	return bpf_map_lookup_elem(&mbr_lb4_svc, key);
}

/*
 * One pick: a random slot in 1..count, then its backend. NULL when the slot
 * or the backend has just gone (a shrink raced with this read of count).
 */
static __always_inline struct mbr_lb4_backend *
lb4_pick_backend(struct mbr_lb4_key *key, __u16 count)
{
	struct mbr_lb4_service *slot;

	key->backend_slot = (__u16)(bpf_get_prandom_u32() % count) + 1;
	slot = bpf_map_lookup_elem(&mbr_lb4_svc, key);
	if (!slot)
		return NULL;
	return bpf_map_lookup_elem(&mbr_lb4_backend, &slot->backend_id);
}

/* What lb4_select found for a frontend. */
enum lb4_selection {
	LB4_NOT_A_FRONTEND, /* pass untouched */
	LB4_NO_BACKEND,	    /* refuse */
	LB4_BACKEND,	    /* translate to *backend */
};

/*
 * Chooses a backend for a new connection (or datagram) to key's frontend.
 * A miss of the first pick means the agent shrank the service meanwhile:
 * the master is read again (its count is then the new one, and the slots
 * 1..count present) and a second pick made. *svc is the master used.
 */
static __always_inline enum lb4_selection
lb4_select(struct mbr_lb4_key *key, struct mbr_lb4_service **svc,
	   struct mbr_lb4_backend **backend)
{
	struct mbr_lb4_service *s = lb4_lookup_service(key);

	if (!s)
		return LB4_NOT_A_FRONTEND;
	if (s->count == 0)
		return LB4_NO_BACKEND;
	*svc = s;
	*backend = lb4_pick_backend(key, s->count);
	if (*backend)
		return LB4_BACKEND;

	s = lb4_lookup_service(key);
	if (!s)
		return LB4_NOT_A_FRONTEND; /* deleted meanwhile */
	if (s->count == 0)
		return LB4_NO_BACKEND;
	*svc = s;
	*backend = lb4_pick_backend(key, s->count);
	return *backend ? LB4_BACKEND : LB4_NO_BACKEND;
}

/*
 * Remembers, for this socket and backend, the frontend it was sent to.
 * Written only when it differs: an unconnected UDP socket calls this on
 * every datagram, and an unchanged entry costs one lookup, not an update.
 */
static __always_inline void lb4_update_revnat(__u64 cookie,
					      const struct mbr_lb4_backend *be,
					      __u32 frontend, __u16 fport,
					      __u32 service_id)
{
	struct mbr_lb4_revnat_key k = {
		.cookie = cookie,
		.address = be->address,
		.port = be->port,
	};
	struct mbr_lb4_revnat_value v = {
		.address = frontend,
		.port = fport,
		.service_id = service_id,
	};
	struct mbr_lb4_revnat_value *old = bpf_map_lookup_elem(&mbr_lb4_rev_sk, &k);

	if (old && old->address == v.address && old->port == v.port &&
	    old->service_id == v.service_id)
		return;
	/* LRU: never fails for want of room. A failure otherwise leaves the
	 * socket translated forward only; replies then show the backend. */
	bpf_map_update_elem(&mbr_lb4_rev_sk, &k, &v, BPF_ANY);
}

#endif
