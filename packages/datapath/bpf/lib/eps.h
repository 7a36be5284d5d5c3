/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Who is at either end of a packet: the local endpoint behind a host-side
 * veth (mbr_endpoints), and the identity of a peer address (mbr_ipcache).
 */
#ifndef MBR_EPS_H
#define MBR_EPS_H

#include "maps.h"

/* NULL: the interface is no endpoint's (the programs leave its packets alone). */
static __always_inline struct mbr_endpoint *lookup_endpoint(__u32 ifindex)
{
	return bpf_map_lookup_elem(&mbr_endpoints, &ifindex);
}

/* An address the ipcache does not know is the world (Cilium's identity 2). */
static __always_inline __u32 ipcache_identity(__u32 addr)
{
	struct mbr_ipcache_key k = { .prefixlen = 32, .addr = addr };
	struct mbr_ipcache_value *v = bpf_map_lookup_elem(&mbr_ipcache, &k);

	return v ? v->identity : MBR_ID_WORLD;
}

#endif
