/* Socket options Node does not expose, on the fd of a Node socket or server:
 * IP_TRANSPARENT (the L7 proxy's listener accepts connections addressed to
 * other destinations), SO_MARK (the proxy marks its upstream traffic so the
 * datapath recognises it) and SO_ORIGINAL_DST (where a NATed connection was
 * going). */
#include "common.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

/* From <linux/netfilter_ipv4.h> / <linux/netfilter_ipv6/ip6_tables.h>,
 * whose includes clash with glibc's <netinet/in.h>. */
#ifndef SO_ORIGINAL_DST
#define SO_ORIGINAL_DST 80
#endif
#ifndef IP6T_SO_ORIGINAL_DST
#define IP6T_SO_ORIGINAL_DST 80
#endif

static bool socket_family(napi_env env, int fd, const char *what, int *family) {
  socklen_t len = sizeof *family;
  if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, family, &len) < 0) {
    mbr_throw_errno(env, errno, "getsockopt", "%s on fd %d", what, fd);
    return false;
  }
  return true;
}

static napi_value undefined(napi_env env) {
  napi_value v;
  NAPI_CALL(env, napi_get_undefined(env, &v));
  return v;
}

/* setIpTransparent(fd, on): IP_TRANSPARENT, or IPV6_TRANSPARENT on an IPv6
 * socket (the same flag of the socket, v4-mapped traffic included). */
static napi_value set_ip_transparent(napi_env env, napi_callback_info info) {
  MBR_ARGS(env, info, 2, argv, argc);
  int32_t fd;
  bool on;
  int family;
  if (!mbr_arg_i32(env, argv[0], "fd", &fd) ||
      !mbr_arg_bool(env, argv[1], "on", &on) ||
      !socket_family(env, fd, "set IP_TRANSPARENT", &family))
    return NULL;
  int v = on ? 1 : 0;
  int r = family == AF_INET6
              ? setsockopt(fd, SOL_IPV6, IPV6_TRANSPARENT, &v, sizeof v)
              : setsockopt(fd, SOL_IP, IP_TRANSPARENT, &v, sizeof v);
  if (r < 0)
    return mbr_throw_errno(env, errno, "setsockopt", "set %s on fd %d",
                           family == AF_INET6 ? "IPV6_TRANSPARENT"
                                              : "IP_TRANSPARENT",
                           fd);
  return undefined(env);
}

/* getIpTransparent(fd) → boolean */
static napi_value get_ip_transparent(napi_env env, napi_callback_info info) {
  MBR_ARGS(env, info, 1, argv, argc);
  int32_t fd;
  int family, v = 0;
  socklen_t len = sizeof v;
  if (!mbr_arg_i32(env, argv[0], "fd", &fd) ||
      !socket_family(env, fd, "get IP_TRANSPARENT", &family))
    return NULL;
  int r = family == AF_INET6
              ? getsockopt(fd, SOL_IPV6, IPV6_TRANSPARENT, &v, &len)
              : getsockopt(fd, SOL_IP, IP_TRANSPARENT, &v, &len);
  if (r < 0)
    return mbr_throw_errno(env, errno, "getsockopt", "get %s on fd %d",
                           family == AF_INET6 ? "IPV6_TRANSPARENT"
                                              : "IP_TRANSPARENT",
                           fd);
  napi_value b;
  NAPI_CALL(env, napi_get_boolean(env, v != 0, &b));
  return b;
}

/* setSoMark(fd, mark) */
static napi_value set_so_mark(napi_env env, napi_callback_info info) {
  MBR_ARGS(env, info, 2, argv, argc);
  int32_t fd;
  uint32_t mark;
  if (!mbr_arg_i32(env, argv[0], "fd", &fd) ||
      !mbr_arg_u32(env, argv[1], "mark", &mark))
    return NULL;
  if (setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof mark) < 0)
    return mbr_throw_errno(env, errno, "setsockopt",
                           "set SO_MARK 0x%x on fd %d", mark, fd);
  return undefined(env);
}

/* getSoMark(fd) → number */
static napi_value get_so_mark(napi_env env, napi_callback_info info) {
  MBR_ARGS(env, info, 1, argv, argc);
  int32_t fd;
  uint32_t mark = 0;
  socklen_t len = sizeof mark;
  if (!mbr_arg_i32(env, argv[0], "fd", &fd))
    return NULL;
  if (getsockopt(fd, SOL_SOCKET, SO_MARK, &mark, &len) < 0)
    return mbr_throw_errno(env, errno, "getsockopt", "get SO_MARK on fd %d",
                           fd);
  napi_value v;
  NAPI_CALL(env, napi_create_uint32(env, mark, &v));
  return v;
}

/* getOriginalDst(fd) → { address, port, family: 4 | 6 }. Needs a conntrack
 * entry for the connection (netfilter NAT/conntrack); ENOENT otherwise. */
static napi_value get_original_dst(napi_env env, napi_callback_info info) {
  MBR_ARGS(env, info, 1, argv, argc);
  int32_t fd;
  int family;
  if (!mbr_arg_i32(env, argv[0], "fd", &fd) ||
      !socket_family(env, fd, "get SO_ORIGINAL_DST", &family))
    return NULL;
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  memset(&ss, 0, sizeof ss);
  int r = family == AF_INET6
              ? getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, &ss, &len)
              : getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &ss, &len);
  if (r < 0) {
    int e = errno;
    const char *why =
        e == ENOENT ? "netfilter conntrack has no entry for this connection; "
                      "with TPROXY or bpf_sk_assign the original destination "
                      "is the socket's local address"
                    : NULL;
    return mbr_throw(env, mbr_errno_error_detail(env, e, "getsockopt", why,
                                                 "get SO_ORIGINAL_DST on fd %d",
                                                 fd));
  }
  char addr[INET6_ADDRSTRLEN] = "";
  unsigned port = 0;
  int fam = 4;
  if (ss.ss_family == AF_INET6) {
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    inet_ntop(AF_INET6, &s6->sin6_addr, addr, sizeof addr);
    port = ntohs(s6->sin6_port);
    fam = 6;
  } else {
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    inet_ntop(AF_INET, &s4->sin_addr, addr, sizeof addr);
    port = ntohs(s4->sin_port);
  }
  napi_value o;
  NAPI_CALL(env, napi_create_object(env, &o));
  if (!mbr_set_str(env, o, "address", addr) ||
      !mbr_set_u32(env, o, "port", port) ||
      !mbr_set_u32(env, o, "family", (uint32_t)fam))
    return NULL;
  return o;
}

bool mbr_init_sockopt(napi_env env, napi_value exports) {
  static const mbr_export list[] = {
      {"setIpTransparent", set_ip_transparent},
      {"getIpTransparent", get_ip_transparent},
      {"setSoMark", set_so_mark},
      {"getSoMark", get_so_mark},
      {"getOriginalDst", get_original_dst},
      {NULL, NULL},
  };
  return mbr_define(env, exports, list);
}
