// SPDX-License-Identifier: GPL-2.0
/* A small tc classifier the addon's tests load: it parses Ethernet/IPv4/TCP
 * or UDP, counts packets, looks the destination up in an LPM trie, asks a
 * hash-of-maps for a per-port deny, writes one ring-buffer event per IPv4
 * packet and returns TC_ACT_OK or TC_ACT_SHOT.
 *
 * Verdict order: config[0].mode == FX_MODE_DROP_ALL drops everything; else
 * an IPv4 packet whose destination port is in the inner map at
 * mbr_fx_policy[FX_POLICY_ENDPOINT] is dropped; else it passes.
 *
 * The event layout (struct fx_event, 36 bytes, little-endian host fields,
 * addresses and ports in network order) is mirrored by the tests. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <linux/tcp.h>
#include <linux/udp.h>

#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

/* Counter keys of mbr_fx_count. */
#define FX_CNT_PACKETS 0
#define FX_CNT_IPV4 1
#define FX_CNT_TCP 2
#define FX_CNT_DROPPED 3
#define FX_CNT_EVENTS_LOST 4

#define FX_MODE_POLICY 0
#define FX_MODE_DROP_ALL 1

#define FX_POLICY_ENDPOINT 1

#define FX_EVENT_PACKET 1

struct fx_config {
  __u32 mode;
};

struct fx_lpm_key {
  __u32 prefixlen;
  __u32 addr; /* network order */
};

struct fx_event {
  __u32 kind;
  __u32 ifindex;
  __u32 len;
  __u32 mark;
  __u32 saddr;
  __u32 daddr;
  __u16 sport;
  __u16 dport;
  __u8 proto;
  __u8 verdict;
  __u16 pad;
  __u32 identity; /* LPM value for daddr, 0 when no prefix matched */
};

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 16);
  __type(key, __u32);
  __type(value, __u64);
} mbr_fx_count SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct fx_config);
} mbr_fx_config SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_LPM_TRIE);
  __uint(max_entries, 64);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, struct fx_lpm_key);
  __type(value, __u32);
} mbr_fx_lpm SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, 64 * 1024);
} mbr_fx_events SEC(".maps");

/* Outer: endpoint id → inner map of denied destination ports (host order). */
struct fx_ports {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 64);
  __type(key, __u16);
  __type(value, __u8);
};

struct {
  __uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
  __uint(max_entries, 8);
  __type(key, __u32);
  __array(values, struct fx_ports);
} mbr_fx_policy SEC(".maps");

static __always_inline void count(__u32 key) {
  __u64 *v = bpf_map_lookup_elem(&mbr_fx_count, &key);
  if (v) {
    __sync_fetch_and_add(v, 1);
  } else {
    __u64 one = 1;
    /* Two CPUs may both insert: one increment is lost, fine for a test. */
    bpf_map_update_elem(&mbr_fx_count, &key, &one, BPF_NOEXIST);
  }
}

static __always_inline int denied_port(__u16 dport) {
  __u32 ep = FX_POLICY_ENDPOINT;
  void *inner = bpf_map_lookup_elem(&mbr_fx_policy, &ep);
  if (!inner)
    return 0;
  return bpf_map_lookup_elem(inner, &dport) != NULL;
}

SEC("tc")
int mbr_fx_classify(struct __sk_buff *skb) {
  void *data = (void *)(long)skb->data;
  void *data_end = (void *)(long)skb->data_end;
  struct ethhdr *eth = data;
  __u32 zero = 0;
  struct fx_config *cfg = bpf_map_lookup_elem(&mbr_fx_config, &zero);
  int drop_all = cfg && cfg->mode == FX_MODE_DROP_ALL;

  count(FX_CNT_PACKETS);
  if ((void *)(eth + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
    goto verdict_only;

  struct iphdr *ip = (void *)(eth + 1);
  if ((void *)(ip + 1) > data_end || ip->ihl < 5)
    goto verdict_only;
  count(FX_CNT_IPV4);

  __u16 sport = 0, dport = 0;
  void *l4 = (void *)ip + ip->ihl * 4;
  if (ip->protocol == IPPROTO_TCP) {
    struct tcphdr *tcp = l4;
    if ((void *)(tcp + 1) > data_end)
      goto verdict_only;
    count(FX_CNT_TCP);
    sport = tcp->source;
    dport = tcp->dest;
  } else if (ip->protocol == IPPROTO_UDP) {
    struct udphdr *udp = l4;
    if ((void *)(udp + 1) > data_end)
      goto verdict_only;
    sport = udp->source;
    dport = udp->dest;
  }

  int drop = drop_all || (dport && denied_port(bpf_ntohs(dport)));

  struct fx_lpm_key key = {.prefixlen = 32, .addr = ip->daddr};
  __u32 *identity = bpf_map_lookup_elem(&mbr_fx_lpm, &key);

  struct fx_event *ev = bpf_ringbuf_reserve(&mbr_fx_events, sizeof(*ev), 0);
  if (ev) {
    ev->kind = FX_EVENT_PACKET;
    ev->ifindex = skb->ifindex;
    ev->len = skb->len;
    ev->mark = skb->mark;
    ev->saddr = ip->saddr;
    ev->daddr = ip->daddr;
    ev->sport = sport;
    ev->dport = dport;
    ev->proto = ip->protocol;
    ev->verdict = drop ? TC_ACT_SHOT : TC_ACT_OK;
    ev->pad = 0;
    ev->identity = identity ? *identity : 0;
    bpf_ringbuf_submit(ev, 0);
  } else {
    count(FX_CNT_EVENTS_LOST);
  }
  if (drop) {
    count(FX_CNT_DROPPED);
    return TC_ACT_SHOT;
  }
  return TC_ACT_OK;

verdict_only:
  if (drop_all) {
    count(FX_CNT_DROPPED);
    return TC_ACT_SHOT;
  }
  return TC_ACT_OK;
}

char _license[] SEC("license") = "GPL";
