/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The maps of the endpoint programs. Every map is pinned by name under the
 * agent's pin root (/sys/fs/bpf/membrane/), so a restarted agent and every
 * loaded copy of the programs share them; their keys and values are the
 * structs of abi.h. A compilation unit includes this once: it defines them.
 */
#ifndef MBR_MAPS_H
#define MBR_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "abi.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct mbr_endpoint);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mbr_endpoints SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 65536);
	__type(key, struct mbr_ipcache_key);
	__type(value, struct mbr_ipcache_value);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mbr_ipcache SEC(".maps");

/*
 * The inner map template gives sizes, not types: clang emits only a forward
 * declaration for types reached through the outer map's value pointer.
 */
struct mbr_policy_inner {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 65536);
	__uint(key_size, sizeof(struct mbr_policy_key));
	__uint(value_size, sizeof(struct mbr_policy_value));
	__uint(map_flags, BPF_F_NO_PREALLOC);
};

/* Endpoint id -> its policy map; the agent swaps a whole inner map at once. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__array(values, struct mbr_policy_inner);
} mbr_policy SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 262144);
	__type(key, struct mbr_ct_key);
	__type(value, struct mbr_ct_value);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mbr_ct SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mbr_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MBR_METRICS_ENTRIES);
	__type(key, __u32);
	__type(value, struct mbr_metrics_value);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mbr_metrics SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct mbr_config);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mbr_config SEC(".maps");

#endif
