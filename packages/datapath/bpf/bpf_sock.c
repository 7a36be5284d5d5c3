// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * ClusterIP services load-balanced at the socket, as Cilium does without
 * kube-proxy ("socket-LB"). Attached to the root of the cgroup v2 hierarchy
 * (BPF_F_ALLOW_MULTI), so they run for every socket of every process on the
 * machine, in every network namespace:
 *
 *   sock4_connect  cgroup/connect4      connect() to a frontend: the address
 *                                       becomes a backend's before any packet
 *                                       exists (TCP, and connected UDP);
 *   sock4_sendmsg  cgroup/sendmsg4      sendto() of unconnected UDP, per
 *                                       datagram;
 *   sock4_recvmsg  cgroup/recvmsg4      recvfrom() of UDP: a reply from the
 *                                       backend shows the frontend as source;
 *   sock4_getpeer  cgroup/getpeername4  getpeername() shows the frontend.
 *
 * So the tc endpoint programs (bpf_lxc.c) and policy see the backend pod,
 * and an established connection keeps its backend whatever happens to the
 * service later: its socket holds the address.
 *
 * What a program may change, and when:
 *   - a destination that is not a frontend of this agent's maps passes
 *     untouched (one hash lookup: the cost for everybody else);
 *   - a frontend with no backends refuses: connect()/sendto() fail at once
 *     with ECONNREFUSED (bpf_set_retval, Linux 5.18+), never a hang;
 *   - only ever the address and port of the call, never its other fields.
 * Several agents (different pin roots, different maps) may be attached at
 * once: each translates only its own frontends, and a backend address is no
 * frontend of the others, so an address is translated once at most.
 */
#include <linux/bpf.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>

#include "lib/abi_lb.h"
#include "lib/lb.h"

#define SYS_REJECT 0
#define SYS_PROCEED 1

#define ECONNREFUSED 111

/* user_port holds the port in network order in its low 16 bits; the
 * verifier wants the whole 4-byte field read and written. */
static __always_inline __u16 ctx_port(const struct bpf_sock_addr *ctx)
{
	volatile __u32 port = ctx->user_port;

	return (__u16)port;
}

static __always_inline void ctx_set(struct bpf_sock_addr *ctx, __u32 addr,
				    __u16 port)
{
	ctx->user_ip4 = addr;
	ctx->user_port = (__u32)port;
}

/* connect4 and sendmsg4: frontend -> backend. */
static __always_inline int sock4_xlate_fwd(struct bpf_sock_addr *ctx)
{
	struct mbr_lb4_key key = {
		.address = ctx->user_ip4,
		.dport = ctx_port(ctx),
		.proto = (__u8)ctx->protocol,
	};
	struct mbr_lb4_backend *be = NULL;
	struct mbr_lb4_service *svc = NULL;
	__u32 frontend = key.address;
	__u16 fport = key.dport;

	switch (lb4_select(&key, &svc, &be)) {
	case LB4_NOT_A_FRONTEND:
		return SYS_PROCEED;
	case LB4_NO_BACKEND:
		/* 0 alone would fail with EPERM; the retval says why. */
		bpf_set_retval(-ECONNREFUSED);
		return SYS_REJECT;
	case LB4_BACKEND:
		break;
	}
	if (!be || !svc)
		return SYS_PROCEED; /* unreachable: keeps the verifier's view simple */
	lb4_update_revnat(bpf_get_socket_cookie(ctx), be, frontend, fport,
			  svc->service_id);
	ctx_set(ctx, be->address, be->port);
	return SYS_PROCEED;
}

/*
 * recvmsg4 and getpeername4: backend -> frontend, for sockets connect4 or
 * sendmsg4 sent there. An entry whose frontend is gone (the service was
 * deleted) is dropped and the address left as it is, so a later service on
 * another address never inherits it.
 */
static __always_inline void sock4_xlate_rev(struct bpf_sock_addr *ctx)
{
	struct mbr_lb4_revnat_key rk = {
		.cookie = bpf_get_socket_cookie(ctx),
		.address = ctx->user_ip4,
		.port = ctx_port(ctx),
	};
	struct mbr_lb4_revnat_value *rv = bpf_map_lookup_elem(&mbr_lb4_rev_sk, &rk);
	struct mbr_lb4_service *svc;
	struct mbr_lb4_key key;

	if (!rv)
		return;
	key = (struct mbr_lb4_key){
		.address = rv->address,
		.dport = rv->port,
		.proto = (__u8)ctx->protocol,
	};
	svc = lb4_lookup_service(&key);
	if (!svc || svc->service_id != rv->service_id) {
		bpf_map_delete_elem(&mbr_lb4_rev_sk, &rk);
		return;
	}
	ctx_set(ctx, rv->address, rv->port);
}

SEC("cgroup/connect4")
int sock4_connect(struct bpf_sock_addr *ctx)
{
	return sock4_xlate_fwd(ctx);
}

SEC("cgroup/sendmsg4")
int sock4_sendmsg(struct bpf_sock_addr *ctx)
{
	return sock4_xlate_fwd(ctx);
}

/* recvmsg4 and getpeername4 must return 1: they can only rewrite. */
SEC("cgroup/recvmsg4")
int sock4_recvmsg(struct bpf_sock_addr *ctx)
{
	sock4_xlate_rev(ctx);
	return SYS_PROCEED;
}

SEC("cgroup/getpeername4")
int sock4_getpeer(struct bpf_sock_addr *ctx)
{
	sock4_xlate_rev(ctx);
	return SYS_PROCEED;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
