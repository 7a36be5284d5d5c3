/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The layouts shared by the kernel programs and the agent. Every struct here
 * has one TypeScript codec (packages/datapath/src/codecs.ts) and a test that
 * compares sizes and offsets with this file. Multi-byte addresses and ports
 * are in network byte order (as on the wire); counters, identities and ids
 * are in host order unless a comment says otherwise.
 */
#ifndef MBR_ABI_H
#define MBR_ABI_H

#include <linux/types.h>

#define MBR_DIR_INGRESS 0 /* towards the endpoint (to-container) */
#define MBR_DIR_EGRESS 1  /* leaving the endpoint (from-container) */

/* Reserved identities (Cilium's numbers). */
#define MBR_ID_HOST 1
#define MBR_ID_WORLD 2

/* mbr_endpoints: host-side ifindex -> endpoint. */
struct mbr_endpoint {
	__u32 ep_id;
	__u32 ipv4; /* network order */
	__u32 identity;
	__u32 flags; /* MBR_EP_F_* */
};

/*
 * Enforcement flags. The realizer keeps each direction's enforcement in the
 * endpoint's policy map itself (the meta entry below), so that one map swap
 * changes entries and enforcement together. Flags set here force enforcement
 * on top of that (e.g. quarantine), whatever the policy map says.
 */
#define MBR_EP_F_INGRESS_ENFORCED (1u << 0)
#define MBR_EP_F_EGRESS_ENFORCED (1u << 1)
#define MBR_EP_F_INGRESS_DEFAULT_DENY (1u << 2)
#define MBR_EP_F_EGRESS_DEFAULT_DENY (1u << 3)

/* mbr_ipcache: LPM trie, address -> identity (and the endpoint when local). */
struct mbr_ipcache_key {
	__u32 prefixlen;
	__u32 addr; /* network order */
};

struct mbr_ipcache_value {
	__u32 identity;
	__u32 ep_id; /* 0: not a local endpoint */
};

/*
 * mbr_policy: hash of maps, endpoint id -> LPM trie of policy entries.
 * The prefix always covers identity and direction (40 bits), then 0 bits
 * (every protocol and port), 8 bits (one protocol) or 8 + n bits (one
 * protocol and a block of ports sharing their first n bits).
 */
struct mbr_policy_key {
	__u32 prefixlen;
	__u32 identity; /* network order: any fixed order works for a full match */
	__u8 direction;
	__u8 proto;
	__u16 dport; /* network order; the ICMP type for ICMP */
};

#define MBR_POLICY_FIXED_BITS 40

/*
 * The meta entry of a direction: key identity MBR_POLICY_META_IDENTITY (no
 * real identity has it), proto 0, port 0, full prefix; its value's cookie
 * holds MBR_POLICY_META_* bits for that direction.
 */
#define MBR_POLICY_META_IDENTITY 0xffffffffu
#define MBR_POLICY_META_ENFORCED (1u << 0)
#define MBR_POLICY_META_DEFAULT_DENY (1u << 1)
/*
 * No entry of this direction has identity 0 (any identity): its lookup
 * would miss, so it is skipped. A negative bit, so a map written without it
 * (an older agent's) is looked up in full.
 */
#define MBR_POLICY_META_NO_WILDCARD (1u << 2)

struct mbr_policy_value {
	__u8 deny;
	__u8 l7;	     /* MBR_L7_*: the proxy parser, 0 when L7-free */
	__u16 proxy_port; /* host order; 0 until the L7 proxy listens */
	__u32 cookie;     /* the agent's id of this entry, reported in events */
};

#define MBR_L7_NONE 0
#define MBR_L7_HTTP 1
#define MBR_L7_DNS 2

/*
 * mbr_ct: LRU hash, one entry per connection and per endpoint that saw it
 * open, keyed by the tuple of its first packet. A reply is the same entry
 * found with the reversed tuple. For ICMP echo, sport carries the id in
 * requests and dport carries it in replies, so the reversal lines up.
 */
struct mbr_ct_key {
	__u32 saddr;
	__u32 daddr;
	__u16 sport;
	__u16 dport;
	__u8 proto;
	__u8 direction; /* MBR_DIR_* of the owning endpoint when it opened */
	__u16 pad;
	__u32 ep_id;
};

struct mbr_ct_value {
	__u64 created_ns;  /* bpf_ktime_get_ns (CLOCK_MONOTONIC) */
	__u64 expires_ns;
	__u32 peer_identity;
	__u32 cookie; /* the policy entry that allowed it (0: not enforced) */
	__u32 packets_fwd;
	__u32 packets_rev;
	__u16 proxy_port;
	__u8 l7;
	__u8 flags; /* MBR_CT_F_* */
};

#define MBR_CT_F_SEEN_REPLY (1u << 0)
#define MBR_CT_F_CLOSING (1u << 1)
/*
 * The L7 proxy's own upstream connection (its first packet carried
 * MBR_MARK_FROM_PROXY): replies to it are marked MBR_MARK_TO_PROXY, so they
 * are delivered to the proxy's socket on this host instead of being routed
 * to the client pod whose address the proxy borrowed.
 */
#define MBR_CT_F_PROXY_UPSTREAM (1u << 2)
/*
 * A local client's egress entry whose connection goes to the proxy for the
 * destination's ingress L7 rule (l7 and proxy_port are that rule's; the
 * cookie stays the client's egress entry's): the destination endpoint's
 * to_container never sees the client's packets, only the proxy's upstream.
 */
#define MBR_CT_F_PEER_L7 (1u << 3)

/* Conntrack lifetimes (Cilium's defaults). */
#define MBR_CT_TCP_SYN_S 60ull
#define MBR_CT_TCP_ESTABLISHED_S 21600ull
#define MBR_CT_TCP_CLOSING_S 10ull
#define MBR_CT_OTHER_S 60ull

/* mbr_events: ring buffer of these records. */
struct mbr_event {
	__u64 ts_ns;
	__u8 type;	  /* MBR_EVENT_* */
	__u8 direction;	  /* MBR_DIR_* */
	__u8 proto;
	__u8 tcp_flags;
	__u8 verdict;	  /* MBR_VERDICT_* */
	__u8 is_reply;
	__u8 l7;
	__u8 pad;
	__u16 drop_reason; /* Cilium's numbers; 0 when forwarded */
	__u16 proxy_port;
	__u32 ep_id;
	__u32 src_identity;
	__u32 dst_identity;
	__u32 saddr; /* network order */
	__u32 daddr; /* network order */
	__u16 sport; /* network order */
	__u16 dport; /* network order */
	__u32 ifindex;
	__u32 cookie;
	__u32 len;
};

#define MBR_EVENT_TRACE 1 /* a new connection was forwarded */
#define MBR_EVENT_DROP 2

#define MBR_VERDICT_FORWARDED 1
#define MBR_VERDICT_DROPPED 2

/* Drop reasons, as Cilium numbers them (pkg/monitor/api/drop.go). */
#define MBR_DROP_INVALID_SIP 132
#define MBR_DROP_POLICY 133
#define MBR_DROP_INVALID_PACKET 134
#define MBR_DROP_UNSUPPORTED_L3 139
#define MBR_DROP_PROXY_LOOKUP_FAILED 178 /* no proxy listens: the SYN is answered with a reset */
#define MBR_DROP_PROXY_SET_FAILED 179	  /* the listener was found but could not be assigned: reset too */
#define MBR_DROP_POLICY_DENY 181

/* mbr_metrics: per-CPU array of counters, index = reason * 2 + direction (reason 0 = forwarded). */
struct mbr_metrics_value {
	__u64 packets;
	__u64 bytes;
};

#define MBR_METRICS_ENTRIES 512
/* Index of the lost-events counter (reason slot 255, direction 0). */
#define MBR_METRICS_LOST_EVENTS (255 * 2)

/* mbr_config: array[1]. */
struct mbr_config {
	__u32 flags;
	/* Wake the reader once this much event data waits; until then it polls. */
	__u32 wakeup_bytes;
	/*
	 * The L7 redirect (proxy.h). proxy_listener 0: no proxy is configured,
	 * and an L7 connection is only marked. router_ifindex 0: no hairpin, an
	 * ingress L7 connection is only marked too. The router link is the pod
	 * network's <prefix>r (it holds the pods' gateway); from_hairpin runs at
	 * its tc ingress.
	 */
	__u32 router_ifindex;
	__u8 router_mac[6];
	__u16 pad;
	__u32 proxy_listener; /* IPv4 of the proxy's listeners, network order */
};

/*
 * skb->mark, low 16 bits (MBR_MARK_MASK):
 *   MBR_MARK_TO_PROXY    set by the programs: deliver on this host (policy
 *                        routing: fwmark 0x0a00/0xffff -> a table whose
 *                        only route is `local 0.0.0.0/0 dev lo`); the high
 *                        16 bits hold the proxy port (0 on replies to the
 *                        proxy's upstream connections);
 *   MBR_MARK_FROM_PROXY  set by the proxy (SO_MARK) on its upstream
 *                        sockets: never redirected again, judged by policy
 *                        like any new connection.
 * A pod cannot forge either: crossing into the root namespace (veth) clears
 * skb->mark.
 */
#define MBR_MARK_TO_PROXY 0x0a00
#define MBR_MARK_FROM_PROXY 0x0b00
#define MBR_MARK_MASK 0xffff

#endif
