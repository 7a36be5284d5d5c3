/* The L7 proxy's sockets, which Node cannot make itself (see
 * src/proxy-sockets.ts for how Node adopts them):
 *   createTransparentListener  a TCP listener with IP_TRANSPARENT set before
 *                              bind: it accepts the connections the datapath
 *                              assigns to it (bpf_sk_assign), whose local
 *                              address is their original destination, and
 *                              answers from that address;
 *   createTransparentSocket    an unconnected TCP socket for the proxy's
 *                              upstream: IP_TRANSPARENT (its source may be
 *                              an address of another namespace, the
 *                              client's), SO_MARK (the datapath recognises
 *                              the proxy's traffic and never redirects it
 *                              again), bound to that source with port 0.
 * Both are IPv4, nonblocking and close-on-exec; the fd is the caller's. */
#include "common.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

static napi_value fd_value(napi_env env, int fd) {
  napi_value v;
  if (napi_create_int32(env, fd, &v) != napi_ok) {
    close(fd);
    mbr_throw_napi(env, napi_generic_failure, "napi_create_int32");
    return NULL;
  }
  return v;
}

static bool ipv4_arg(napi_env env, napi_value v, const char *name,
                     struct in_addr *out, char *text, size_t size) {
  char *s = mbr_arg_string(env, v, name);
  if (!s)
    return false;
  bool ok = inet_pton(AF_INET, s, out) == 1;
  if (ok)
    snprintf(text, size, "%s", s);
  else
    mbr_throw_type(env, "%s: \"%s\" is not an IPv4 address", name, s);
  free(s);
  return ok;
}

/* Closes fd and throws the errno of `syscall`, saying what was being done. */
static napi_value fail(napi_env env, int fd, const char *syscall,
                       const char *what, const char *where) {
  int e = errno;
  close(fd);
  return mbr_throw_errno(env, e, syscall, "%s %s", what, where);
}

static int tcp4_socket(void) {
  return socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
}

/* createTransparentListener(address, port, { backlog = 511 }?) → fd */
static napi_value create_transparent_listener(napi_env env,
                                              napi_callback_info info) {
  MBR_ARGS(env, info, 3, argv, argc);
  struct sockaddr_in sa = {.sin_family = AF_INET};
  char addr[INET_ADDRSTRLEN], where[64];
  uint32_t port, backlog = 511;
  bool present;
  if (!ipv4_arg(env, argv[0], "address", &sa.sin_addr, addr, sizeof addr) ||
      !mbr_arg_u32(env, argv[1], "port", &port) ||
      !mbr_arg_options(env, argv[2], "options", &present))
    return NULL;
  if (port > 65535)
    return mbr_throw_range(env, "port %u is not a TCP port", port);
  if (present && !mbr_opt_u32(env, argv[2], "backlog", &backlog))
    return NULL;
  sa.sin_port = htons((uint16_t)port);
  snprintf(where, sizeof where, "on %s:%u", addr, port);

  int fd = tcp4_socket();
  if (fd < 0)
    return mbr_throw_errno(env, errno, "socket", "create the transparent listener %s", where);
  int one = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
    return fail(env, fd, "setsockopt", "set SO_REUSEADDR on the transparent listener", where);
  /* Before bind: the kernel decides then whether the socket may take
   * connections for addresses that are not its own. */
  if (setsockopt(fd, SOL_IP, IP_TRANSPARENT, &one, sizeof one) < 0)
    return fail(env, fd, "setsockopt", "set IP_TRANSPARENT on the transparent listener", where);
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
    return fail(env, fd, "bind", "bind the transparent listener", where);
  if (listen(fd, (int)backlog) < 0)
    return fail(env, fd, "listen", "listen", where);
  return fd_value(env, fd);
}

/* createTransparentSocket(sourceAddress, mark) → fd, bound to sourceAddress:0 */
static napi_value create_transparent_socket(napi_env env,
                                            napi_callback_info info) {
  MBR_ARGS(env, info, 2, argv, argc);
  struct sockaddr_in sa = {.sin_family = AF_INET};
  char addr[INET_ADDRSTRLEN], where[64];
  uint32_t mark;
  if (!ipv4_arg(env, argv[0], "sourceAddress", &sa.sin_addr, addr, sizeof addr) ||
      !mbr_arg_u32(env, argv[1], "mark", &mark))
    return NULL;
  snprintf(where, sizeof where, "from %s (mark 0x%x)", addr, mark);

  int fd = tcp4_socket();
  if (fd < 0)
    return mbr_throw_errno(env, errno, "socket", "create the transparent socket %s", where);
  int one = 1;
  if (setsockopt(fd, SOL_IP, IP_TRANSPARENT, &one, sizeof one) < 0)
    return fail(env, fd, "setsockopt", "set IP_TRANSPARENT on the transparent socket", where);
  if (setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof mark) < 0)
    return fail(env, fd, "setsockopt", "set SO_MARK on the transparent socket", where);
  /* The port is chosen at connect, among those free for the 4-tuple, not
   * at bind among those free for the address alone. */
  if (setsockopt(fd, SOL_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one) < 0)
    return fail(env, fd, "setsockopt", "set IP_BIND_ADDRESS_NO_PORT on the transparent socket", where);
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
    return fail(env, fd, "bind", "bind the transparent socket", where);
  return fd_value(env, fd);
}

bool mbr_init_proxy_socket(napi_env env, napi_value exports) {
  static const mbr_export list[] = {
      {"createTransparentListener", create_transparent_listener},
      {"createTransparentSocket", create_transparent_socket},
      {NULL, NULL},
  };
  return mbr_define(env, exports, list);
}
