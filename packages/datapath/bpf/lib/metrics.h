/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Per-CPU packet and byte counters (mbr_metrics): one slot per reason and
 * direction, reason 0 being "forwarded". Every verdict is counted, whether
 * or not it also emits an event, so the counters stay right when events are
 * lost.
 */
#ifndef MBR_METRICS_H
#define MBR_METRICS_H

#include "maps.h"

static __always_inline void count(__u16 reason, __u8 dir, __u32 len)
{
	__u32 idx = (__u32)reason * 2 + dir;
	struct mbr_metrics_value *m;

	if (idx >= MBR_METRICS_ENTRIES)
		return;
	m = bpf_map_lookup_elem(&mbr_metrics, &idx);
	if (m) {
		m->packets++;
		m->bytes += len;
	}
}

#endif
