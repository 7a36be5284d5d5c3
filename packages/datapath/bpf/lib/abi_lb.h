/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The layouts of the socket load balancer (bpf_sock.c), shared with the
 * agent: one TypeScript codec each in packages/datapath/src/codecs.ts, and a
 * test comparing sizes and offsets with this file. The shapes follow
 * Cilium's lb4_key / lb4_service / lb4_backend / ipv4_revnat_tuple so a
 * Cilium user reads them unchanged. Addresses and ports are in network byte
 * order; ids, counts and slots in host order.
 */
#ifndef MBR_ABI_LB_H
#define MBR_ABI_LB_H

#include <linux/types.h>

/*
 * mbr_lb4_svc: hash, one entry per (frontend, slot).
 *
 *   slot 0       the master entry of the frontend: count = number of
 *                backends, service_id, flags; backend_id is 0;
 *   slot 1..n    backend_id of the n-th backend (count 0, same service_id).
 *
 * Readers (connect4/sendmsg4) read the master, pick a slot in 1..count and
 * look it up, then its backend. The agent keeps, at every instant, every
 * slot 1..count present and naming a backend present in mbr_lb4_backend:
 *   growing    backends first, then the slots, then the master's count;
 *   shrinking  the master's count first, then the slots beyond it are
 *              deleted, then the backends no slot names any more;
 *   deleting   the master first (the frontend stops being one at once),
 *              then its slots, then its unshared backends.
 * A reader that read the master just before a shrink can still find a slot
 * or a backend gone; it reads the master once more and picks again (see
 * lb.h), and refuses only when that fails too.
 */
struct mbr_lb4_key {
	__u32 address;	    /* frontend IPv4, network order */
	__u16 dport;	    /* frontend port, network order */
	__u16 backend_slot; /* 0: the master entry */
	__u8 proto;	    /* IPPROTO_TCP or IPPROTO_UDP */
	__u8 pad1;
	__u16 pad2;
};

struct mbr_lb4_service {
	__u32 backend_id; /* slots 1..n: the backend; master: 0 */
	__u32 service_id; /* the agent's id (Cilium's rev_nat_index) */
	__u16 count;	  /* master: number of backends; slots: 0 */
	__u8 flags;	  /* MBR_LB_F_* (master) */
	__u8 pad;
};

/* No flags yet: the field is there so a later one does not change the ABI. */
#define MBR_LB_F_NONE 0

/* The most backends one frontend can have (slots 1..MBR_LB_MAX_BACKENDS). */
#define MBR_LB_MAX_BACKENDS 1024

/* mbr_lb4_backend: hash, backend id (> 0) -> its address. */
struct mbr_lb4_backend {
	__u32 address; /* network order */
	__u16 port;    /* network order */
	__u8 proto;    /* the frontend's protocol */
	__u8 flags;
};

/*
 * mbr_lb4_rev_sk: LRU hash, written by connect4/sendmsg4 each time a socket
 * is sent to a backend, read by recvmsg4 (the source of a datagram) and
 * getpeername4 (the peer of a connected socket) to show the frontend again.
 * Keyed by the socket's cookie (bpf_get_socket_cookie) and the backend, so
 * one unconnected UDP socket talking to several backends of one frontend
 * gets every reply translated.
 */
struct mbr_lb4_revnat_key {
	__u64 cookie;
	__u32 address; /* backend, network order */
	__u16 port;    /* backend, network order */
	__u16 pad;
};

struct mbr_lb4_revnat_value {
	__u32 address; /* frontend, network order */
	__u16 port;    /* frontend, network order */
	__u16 pad;
	__u32 service_id;
};

#endif
