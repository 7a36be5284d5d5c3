/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The L7 redirect: a connection whose allowing policy entry names an L7
 * parser and a proxy port goes to the proxy process in the host namespace
 * (Cilium does the same for Envoy). Marks and config: abi.h (MBR_MARK_*,
 * struct mbr_config); the policy routing that delivers a marked packet on
 * this host: src/proxy-routing.ts.
 *
 * Every packet of such a connection, in its own direction, is marked
 * MBR_MARK_TO_PROXY | port << 16 (conntrack keeps the decision). Then, once
 * a proxy is configured (mbr_config.proxy_listener) and for TCP:
 *   egress   (from_container, tc ingress of the pod's veth): a SYN is
 *            assigned to the proxy's listener, {proxy_listener, port} in
 *            this namespace (bpf_sk_assign); later packets need nothing
 *            more, TCP's own lookup finds the proxy's accepted socket;
 *   ingress  (to_container, tc egress): bpf_sk_assign is valid at tc
 *            ingress only, so the packet is turned back into the host
 *            stack: its destination MAC becomes the router link's and it is
 *            redirected to that link's ingress, where from_hairpin does the
 *            egress case's assignment.
 * Fail closed: a SYN with no listener to take it (the proxy is down) is
 * answered with a reset from the address it was sent to, and reported as a
 * drop (178; 179 when the listener was found but refused). Never is it let
 * through unchecked. (Local delivery alone would not do: the kernel cannot
 * route the reset it sends for a socketless port, since its source address
 * is not local, and the client would wait for a timeout.)
 *
 * A packet marked MBR_MARK_FROM_PROXY (the proxy's own upstream socket) is
 * never redirected, in either program; it opens its connection like any
 * other, judged by the policy, and conntrack flags the entry
 * MBR_CT_F_PROXY_UPSTREAM, whose replies are marked MBR_MARK_TO_PROXY (port
 * 0): the proxy bound the client's address, and without the mark the reply
 * would be routed to the client pod.
 *
 * UDP (the DNS proxy, egress rules only): every datagram of the flow is
 * assigned at from_container to the proxy's UDP socket {proxy_listener,
 * port}, which reads the original destination (IP_ORIGDSTADDR) and answers
 * from it; no socket there (the agent is down) drops the datagram (178):
 * the query is never let through unchecked.
 *
 * Without a proxy port (the proxy does not listen yet) the packet goes on
 * unredirected and its mark is left as it was; without a configured proxy
 * it is marked only (no assignment, no hairpin).
 */
#ifndef MBR_PROXY_H
#define MBR_PROXY_H

#include <stddef.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <linux/tcp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "abi.h"
#include "maps.h"
#include "parse.h"
#include "policy.h"

#define PROXY_IP_OFF ETH_HLEN
#define PROXY_TCP_OFF (ETH_HLEN + sizeof(struct iphdr))
#define PROXY_IP_CSUM_OFF (PROXY_IP_OFF + offsetof(struct iphdr, check))
#define PROXY_TCP_CSUM_OFF (PROXY_TCP_OFF + offsetof(struct tcphdr, check))
#define PROXY_RST_LEN (ETH_HLEN + sizeof(struct iphdr) + sizeof(struct tcphdr))

static __always_inline int proxy_from_proxy(const struct __sk_buff *skb)
{
	return (skb->mark & MBR_MARK_MASK) == MBR_MARK_FROM_PROXY;
}

static __always_inline void proxy_mark(struct __sk_buff *skb, __u16 port)
{
	skb->mark = ((__u32)port << 16) | MBR_MARK_TO_PROXY;
}

static __always_inline struct mbr_config *proxy_config(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&mbr_config, &zero);
}

/* A SYN without ACK: the packet that opens a TCP connection. */
static __always_inline int tcp_opening(const struct flow *f)
{
	return f->proto == IPPROTO_TCP && (f->tcp_flags & (TCP_SYN | TCP_ACK)) == TCP_SYN;
}

/*
 * Hands the packet (a SYN, or a UDP datagram) to the proxy's socket on
 * {listener, port} in this namespace: its TCP listener or its UDP socket.
 * Valid at tc ingress only (elsewhere bpf_sk_assign refuses). 0, or the
 * drop reason.
 */
static __always_inline __u16 proxy_assign(struct __sk_buff *skb, const struct flow *f, __u32 listener, __u16 port)
{
	struct bpf_sock_tuple t = {};
	struct bpf_sock *sk;
	long err;

	/* The client's address and port only pick a socket of a reuseport group. */
	t.ipv4.saddr = f->saddr;
	t.ipv4.sport = f->sport;
	t.ipv4.daddr = listener;
	t.ipv4.dport = bpf_htons(port);
	if (f->proto == IPPROTO_UDP)
		sk = bpf_sk_lookup_udp(skb, &t, sizeof(t.ipv4), BPF_F_CURRENT_NETNS, 0);
	else
		sk = bpf_sk_lookup_tcp(skb, &t, sizeof(t.ipv4), BPF_F_CURRENT_NETNS, 0);
	if (!sk)
		return MBR_DROP_PROXY_LOOKUP_FAILED;
	if (f->proto == IPPROTO_TCP && sk->state != BPF_TCP_LISTEN) {
		bpf_sk_release(sk);
		return MBR_DROP_PROXY_LOOKUP_FAILED;
	}
	err = bpf_sk_assign(skb, sk, 0);
	bpf_sk_release(sk);
	return err ? MBR_DROP_PROXY_SET_FAILED : 0;
}

/*
 * Turns a SYN into the RST|ACK a closed port answers (RFC 9293 3.10.7.1:
 * seq 0, ack = the SYN's seq + 1), from the address the SYN was sent to:
 * addresses and ports swapped (MACs too with swap_mac), TTL fresh, TCP
 * options cut. The checksums are updated in place (bpf_l3/l4_csum_replace),
 * which keeps them right whether they are complete or left for the device
 * to finish (CHECKSUM_PARTIAL, as a pod's packets come from its veth).
 * 0: done; -1: a packet this does not turn (IP options, a payload): drop it.
 */
static __always_inline int tcp_syn_to_reset(struct __sk_buff *skb, int swap_mac)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct tcphdr *th = (void *)(ip + 1);
	__u32 opts[10] = {};
	__u8 mac[ETH_ALEN];
	__u32 addr, old_seq, old_ack, new_ack, tcp_len, optlen;
	__u16 port, old_tot, new_tot, old_ttl, new_ttl, old_flags, new_flags;
	__s64 opts_sum = 0;

	if ((void *)(th + 1) > end || ip->ihl != 5)
		return -1;
	tcp_len = th->doff * 4;
	if (tcp_len < sizeof(*th) || tcp_len > 60 || bpf_ntohs(ip->tot_len) != sizeof(*ip) + tcp_len)
		return -1;
	optlen = tcp_len - sizeof(*th);
	if (optlen > sizeof(opts))
		return -1;
	if (optlen) {
		if (bpf_skb_load_bytes(skb, PROXY_TCP_OFF + sizeof(*th), opts, optlen) < 0)
			return -1;
		/* What the cut options took out of the sum (negated by csum_diff). */
		opts_sum = bpf_csum_diff(opts, optlen, 0, 0, 0);
		if (opts_sum < 0)
			return -1;
		/* The helper call invalidated the packet pointers. */
		data = (void *)(long)skb->data;
		end = (void *)(long)skb->data_end;
		eth = data;
		ip = (void *)(eth + 1);
		th = (void *)(ip + 1);
		if ((void *)(th + 1) > end)
			return -1;
	}

	if (swap_mac) {
		__builtin_memcpy(mac, eth->h_dest, ETH_ALEN);
		__builtin_memcpy(eth->h_dest, eth->h_source, ETH_ALEN);
		__builtin_memcpy(eth->h_source, mac, ETH_ALEN);
	}
	/* Swapping addresses and ports leaves every checksum as it was. */
	addr = ip->saddr;
	ip->saddr = ip->daddr;
	ip->daddr = addr;
	port = th->source;
	th->source = th->dest;
	th->dest = port;
	old_tot = ip->tot_len;
	new_tot = bpf_htons(sizeof(*ip) + sizeof(*th));
	ip->tot_len = new_tot;
	old_ttl = *(__u16 *)&ip->ttl; /* with the protocol: one 16-bit word of the sum */
	ip->ttl = 64;
	new_ttl = *(__u16 *)&ip->ttl;
	old_seq = th->seq;
	old_ack = th->ack_seq;
	new_ack = bpf_htonl(bpf_ntohl(old_seq) + 1);
	th->seq = 0;
	th->ack_seq = new_ack;
	old_flags = ((__u16 *)th)[6]; /* data offset and flags */
	new_flags = bpf_htons((5 << 12) | TCP_RST | TCP_ACK);
	((__u16 *)th)[6] = new_flags;

	if (bpf_l3_csum_replace(skb, PROXY_IP_CSUM_OFF, old_tot, new_tot, 2) < 0 ||
	    bpf_l3_csum_replace(skb, PROXY_IP_CSUM_OFF, old_ttl, new_ttl, 2) < 0 ||
	    bpf_l4_csum_replace(skb, PROXY_TCP_CSUM_OFF, old_seq, 0, 4) < 0 ||
	    bpf_l4_csum_replace(skb, PROXY_TCP_CSUM_OFF, old_ack, new_ack, 4) < 0 ||
	    bpf_l4_csum_replace(skb, PROXY_TCP_CSUM_OFF, old_flags, new_flags, 2) < 0 ||
	    bpf_l4_csum_replace(skb, PROXY_TCP_CSUM_OFF, bpf_htons(tcp_len), bpf_htons(sizeof(*th)),
				BPF_F_PSEUDO_HDR | 2) < 0)
		return -1;
	if (optlen) {
		if (bpf_l4_csum_replace(skb, PROXY_TCP_CSUM_OFF, 0, opts_sum, 0) < 0)
			return -1;
		if (bpf_skb_change_tail(skb, PROXY_RST_LEN, 0) < 0)
			return -1;
	}
	return 0;
}

/*
 * Steers a packet of an L7 connection (not the proxy's own) to the proxy
 * listening on port: the verdict, and *reason set when the connection is
 * refused (no listener) instead. At tc ingress (hairpin 0) the SYN is
 * assigned here; at tc egress (hairpin 1) the packet is turned back to the
 * router link's ingress first.
 */
static __always_inline int proxy_steer(struct __sk_buff *skb, const struct flow *f, int hairpin, __u16 port,
				       __u16 *reason)
{
	struct mbr_config *cfg;

	proxy_mark(skb, port);
	if (f->proto != IPPROTO_TCP && f->proto != IPPROTO_UDP)
		return TC_ACT_OK;
	cfg = proxy_config();
	if (!cfg || !cfg->proxy_listener)
		return TC_ACT_OK;
	if (f->proto == IPPROTO_UDP) {
		if (hairpin)
			return TC_ACT_OK; /* no UDP rule is L7 on ingress */
		*reason = proxy_assign(skb, f, cfg->proxy_listener, port);
		return *reason ? TC_ACT_SHOT : TC_ACT_OK;
	}
	if (hairpin) {
		if (!cfg->router_ifindex)
			return TC_ACT_OK;
		/* The hairpin: back into the host stack as if the router link had received it. */
		if (bpf_skb_store_bytes(skb, 0, cfg->router_mac, ETH_ALEN, 0) < 0)
			return TC_ACT_SHOT;
		return bpf_redirect(cfg->router_ifindex, BPF_F_INGRESS);
	}
	if (!tcp_opening(f))
		return TC_ACT_OK;
	*reason = proxy_assign(skb, f, cfg->proxy_listener, port);
	if (!*reason)
		return TC_ACT_OK;
	/* Refused: the reset goes straight back out to the pod. */
	skb->mark = 0;
	if (tcp_syn_to_reset(skb, 1) < 0)
		return TC_ACT_SHOT;
	return bpf_redirect(skb->ifindex, 0);
}

/*
 * Whether a new TCP connection to a local endpoint is one its ingress policy
 * sends through the proxy: the destination's ingress entry for this source
 * identity, port and protocol allows it with an L7 parser and a proxy port
 * (*out; *peer is the destination as an endpoint). Asked where the
 * connection enters the host (from_container of a local client, from_outside
 * of a test host), so the proxy takes it before the host routes it: the
 * forwarding path drops a packet whose tuple matches one of the host's own
 * sockets (early demux finds the proxy's accepted socket), so the hairpin at
 * to_container only serves the host's own clients. A deny, or no entry, is
 * not this function's: to_container judges and drops as before.
 */
static __always_inline int proxy_peer_ingress(const struct flow *f, __u32 src_identity, struct mbr_endpoint *peer,
					      struct mbr_policy_value *out)
{
	struct mbr_ipcache_key k = { .prefixlen = 32, .addr = f->daddr };
	struct mbr_ipcache_value *v;
	__u16 reason = 0;

	if (f->proto != IPPROTO_TCP)
		return 0;
	v = bpf_map_lookup_elem(&mbr_ipcache, &k);
	if (!v || !v->ep_id)
		return 0;
	peer->ep_id = v->ep_id;
	peer->ipv4 = f->daddr;
	peer->identity = v->identity;
	/*
	 * Looked up as enforced: an entry decides. (The destination's own flags
	 * are keyed by its veth, unknown here; they only add enforcement, and a
	 * direction with an L7 entry is enforced by its map already.)
	 */
	peer->flags = MBR_EP_F_INGRESS_ENFORCED;
	if (!policy_check(peer, MBR_DIR_INGRESS, src_identity, f, out, &reason))
		return 0;
	return out->l7 && out->proxy_port;
}

#endif
