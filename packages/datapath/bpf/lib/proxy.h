/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The L7 redirect. A connection whose allowing policy entry names an L7
 * parser and a proxy port is marked for the Node proxy (skb->mark, layout
 * MBR_MARK_* in abi.h) on its first packet and on every later packet of its
 * own direction (conntrack keeps the decision); replies are not marked.
 * Without a proxy port (the proxy does not listen yet) the packet goes on
 * unredirected and its mark is left as it was.
 */
#ifndef MBR_PROXY_H
#define MBR_PROXY_H

#include <linux/bpf.h>

#include "abi.h"

static __always_inline void proxy_redirect(struct __sk_buff *skb, __u8 l7, __u16 proxy_port)
{
	if (l7 && proxy_port)
		skb->mark = ((__u32)proxy_port << 16) | MBR_MARK_TO_PROXY;
}

#endif
