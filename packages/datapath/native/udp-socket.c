/* The DNS proxy's UDP sockets, which Node's dgram cannot make (see
 * src/transparent-udp.ts):
 *   udpOpen      a UDP socket with IP_TRANSPARENT and IP_RECVORIGDSTADDR,
 *                bound to an address that need not be local (the listener
 *                on 127.0.0.1 the datapath assigns queries to, or an
 *                upstream socket on the client's address), optionally
 *                marked (SO_MARK); each datagram is handed to the callback
 *                with its source and its original destination, read from a
 *                uv_poll on the JS thread;
 *   udpSend      sendto on such a socket;
 *   udpSendFrom  one datagram from any address and port (a raw socket with
 *                IP_HDRINCL): the proxy's answer leaves from the address
 *                and port the client sent its query to.
 * IPv4 only, nonblocking, close-on-exec. */
#include "common.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#define MAX_DATAGRAM 65535
#define MAX_PER_WAKE 64

typedef struct {
  napi_env env;
  uv_poll_t poll;
  napi_ref callback;
  napi_ref resource;
  napi_async_context async;
  int fd;
  bool polling;
  bool delivering;
  bool closed;
  unsigned char buf[MAX_DATAGRAM];
} mbr_udp;

static const napi_type_tag UDP_TAG = {0x6d6272756470736bULL,
                                      0x4d454d4252414e45ULL};

static bool ipv4_of(napi_env env, napi_value v, const char *name,
                    struct in_addr *out) {
  char *s = mbr_arg_string(env, v, name);
  if (!s)
    return false;
  bool ok = inet_pton(AF_INET, s, out) == 1;
  if (!ok)
    mbr_throw_type(env, "%s: \"%s\" is not an IPv4 address", name, s);
  free(s);
  return ok;
}

static bool port_of(napi_env env, napi_value v, const char *name,
                    uint16_t *out) {
  uint32_t p;
  if (!mbr_arg_u32(env, v, name, &p))
    return false;
  if (p > 65535) {
    mbr_throw_range(env, "%s %u is not a UDP port", name, p);
    return false;
  }
  *out = (uint16_t)p;
  return true;
}

static napi_value str_value(napi_env env, struct in_addr a) {
  char text[INET_ADDRSTRLEN];
  napi_value v = NULL;
  inet_ntop(AF_INET, &a, text, sizeof text);
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &v);
  return v;
}

static napi_value u32_value(napi_env env, uint32_t n) {
  napi_value v = NULL;
  napi_create_uint32(env, n, &v);
  return v;
}

/* Hands one datagram to JS: callback(data, address, port, destAddress, destPort). */
static void deliver(mbr_udp *u, size_t len, const struct sockaddr_in *from,
                    const struct sockaddr_in *to) {
  napi_env env = u->env;
  napi_value argv[5], cb, resource, result;
  void *copy;
  if (napi_create_buffer_copy(env, len, u->buf, &copy, &argv[0]) != napi_ok ||
      napi_get_reference_value(env, u->callback, &cb) != napi_ok ||
      napi_get_reference_value(env, u->resource, &resource) != napi_ok)
    return;
  argv[1] = str_value(env, from->sin_addr);
  argv[2] = u32_value(env, ntohs(from->sin_port));
  argv[3] = str_value(env, to->sin_addr);
  argv[4] = u32_value(env, ntohs(to->sin_port));
  u->delivering = true;
  napi_status s = napi_make_callback(env, u->async, resource, cb, 5, argv, &result);
  u->delivering = false;
  if (u->closed && u->async) {
    napi_async_destroy(env, u->async);
    u->async = NULL;
  }
  if (s == napi_pending_exception) {
    napi_value exc;
    if (napi_get_and_clear_last_exception(env, &exc) == napi_ok)
      napi_fatal_exception(env, exc);
  }
}

static void on_poll(uv_poll_t *handle, int status, int events) {
  mbr_udp *u = handle->data;
  if (u->closed || status < 0)
    return;
  napi_handle_scope scope;
  if (napi_open_handle_scope(u->env, &scope) != napi_ok)
    return;
  for (int i = 0; i < MAX_PER_WAKE && !u->closed; i++) {
    struct sockaddr_in from = {0}, to = {0};
    char control[CMSG_SPACE(sizeof(struct sockaddr_in))];
    struct iovec iov = {.iov_base = u->buf, .iov_len = sizeof u->buf};
    struct msghdr msg = {.msg_name = &from, .msg_namelen = sizeof from,
                         .msg_iov = &iov, .msg_iovlen = 1,
                         .msg_control = control, .msg_controllen = sizeof control};
    ssize_t n = recvmsg(u->fd, &msg, MSG_DONTWAIT);
    if (n < 0)
      break; /* EAGAIN, or an error queued by an ICMP: the next wake goes on */
    if (msg.msg_flags & MSG_TRUNC)
      continue; /* larger than any DNS message over UDP: dropped */
    bool found = false;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level == SOL_IP && c->cmsg_type == IP_ORIGDSTADDR) {
        memcpy(&to, CMSG_DATA(c), sizeof to);
        found = true;
      }
    }
    if (!found)
      continue;
    deliver(u, (size_t)n, &from, &to);
  }
  napi_close_handle_scope(u->env, scope);
}

static void on_close(uv_handle_t *handle) {
  mbr_udp *u = handle->data;
  close(u->fd);
  free(u);
}

static napi_value open_failed(napi_env env, mbr_udp *u, napi_value handle,
                              int err, const char *syscall, const char *what) {
  void *unused;
  if (handle)
    napi_remove_wrap(env, handle, &unused);
  if (u->callback)
    napi_delete_reference(env, u->callback);
  if (u->resource)
    napi_delete_reference(env, u->resource);
  if (u->async)
    napi_async_destroy(env, u->async);
  u->closed = true;
  if (u->polling) {
    uv_close((uv_handle_t *)&u->poll, on_close);
  } else {
    if (u->fd >= 0)
      close(u->fd);
    free(u);
  }
  if (err)
    return mbr_throw_errno(env, err, syscall, "%s", what);
  return NULL;
}

/* udpOpen(address, port, { mark }?, callback) → handle */
static napi_value udp_open(napi_env env, napi_callback_info info) {
  MBR_ARGS(env, info, 4, argv, argc);
  struct sockaddr_in sa = {.sin_family = AF_INET};
  uint32_t mark = 0;
  bool has_opts;
  if (!ipv4_of(env, argv[0], "address", &sa.sin_addr) ||
      !port_of(env, argv[1], "port", &sa.sin_port) ||
      !mbr_arg_options(env, argv[2], "options", &has_opts) ||
      !mbr_opt_u32(env, has_opts ? argv[2] : NULL, "mark", &mark) ||
      !mbr_arg_function(env, argv[3], "callback"))
    return NULL;
  char what[96], addr[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &sa.sin_addr, addr, sizeof addr);
  snprintf(what, sizeof what, "open the transparent UDP socket on %s:%u", addr, sa.sin_port);
  sa.sin_port = htons(sa.sin_port);
  uv_loop_t *loop;
  NAPI_CALL(env, napi_get_uv_event_loop(env, &loop));

  mbr_udp *u = calloc(1, sizeof *u);
  if (!u)
    return mbr_throw_errno(env, ENOMEM, NULL, "%s", what);
  u->env = env;
  u->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (u->fd < 0)
    return open_failed(env, u, NULL, errno, "socket", what);
  int one = 1;
  /* Before bind: whether the socket may own an address that is not local. */
  if (setsockopt(u->fd, SOL_IP, IP_TRANSPARENT, &one, sizeof one) < 0 ||
      setsockopt(u->fd, SOL_IP, IP_RECVORIGDSTADDR, &one, sizeof one) < 0 ||
      (mark && setsockopt(u->fd, SOL_SOCKET, SO_MARK, &mark, sizeof mark) < 0))
    return open_failed(env, u, NULL, errno, "setsockopt", what);
  if (bind(u->fd, (struct sockaddr *)&sa, sizeof sa) < 0)
    return open_failed(env, u, NULL, errno, "bind", what);

  napi_value handle = mbr_handle_new(env, &UDP_TAG, "UDP socket", u, NULL);
  napi_value name;
  if (!handle ||
      napi_create_reference(env, argv[3], 1, &u->callback) != napi_ok ||
      napi_create_reference(env, handle, 1, &u->resource) != napi_ok ||
      napi_create_string_utf8(env, "membrane:udp", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_async_init(env, handle, name, &u->async) != napi_ok) {
    mbr_throw_napi(env, napi_generic_failure, "udpOpen");
    return open_failed(env, u, handle, 0, NULL, what);
  }
  int uerr = uv_poll_init(loop, &u->poll, u->fd);
  if (uerr)
    return open_failed(env, u, handle, -uerr, "epoll_ctl", what);
  u->poll.data = u;
  u->polling = true;
  uerr = uv_poll_start(&u->poll, UV_READABLE, on_poll);
  if (uerr)
    return open_failed(env, u, handle, -uerr, "epoll_ctl", what);
  return handle;
}

/* udpLocalPort(handle) → the port the socket is bound to */
static napi_value udp_local_port(napi_env env, napi_callback_info info) {
  MBR_ARGS(env, info, 1, argv, argc);
  mbr_udp *u = mbr_handle_get(env, argv[0], &UDP_TAG, "UDP socket");
  if (!u)
    return NULL;
  struct sockaddr_in sa;
  socklen_t len = sizeof sa;
  if (getsockname(u->fd, (struct sockaddr *)&sa, &len) < 0)
    return mbr_throw_errno(env, errno, "getsockname", "read the UDP socket's port");
  return u32_value(env, ntohs(sa.sin_port));
}

/* udpSend(handle, data, address, port) → bytes sent */
static napi_value udp_send(napi_env env, napi_callback_info info) {
  MBR_ARGS(env, info, 4, argv, argc);
  mbr_udp *u = mbr_handle_get(env, argv[0], &UDP_TAG, "UDP socket");
  void *data;
  size_t len;
  struct sockaddr_in to = {.sin_family = AF_INET};
  if (!u || !mbr_arg_bytes(env, argv[1], "data", &data, &len) ||
      !ipv4_of(env, argv[2], "address", &to.sin_addr) ||
      !port_of(env, argv[3], "port", &to.sin_port))
    return NULL;
  uint16_t port = to.sin_port;
  to.sin_port = htons(port);
  ssize_t n = sendto(u->fd, data, len, MSG_DONTWAIT, (struct sockaddr *)&to, sizeof to);
  if (n < 0)
    return mbr_throw_errno(env, errno, "sendto", "send %zu bytes to %s:%u", len,
                           inet_ntoa(to.sin_addr), port);
  return u32_value(env, (uint32_t)n);
}

/* udpClose(handle): stops delivery at once; closing twice is a no-op. */
static napi_value udp_close(napi_env env, napi_callback_info info) {
  MBR_ARGS(env, info, 1, argv, argc);
  napi_value undef;
  NAPI_CALL(env, napi_get_undefined(env, &undef));
  napi_valuetype t;
  bool tagged = false;
  if (napi_typeof(env, argv[0], &t) != napi_ok || t != napi_object ||
      napi_check_object_type_tag(env, argv[0], &UDP_TAG, &tagged) != napi_ok || !tagged)
    return mbr_throw_type(env, "expected a UDP socket handle");
  void *data = NULL;
  if (napi_remove_wrap(env, argv[0], &data) != napi_ok || !data)
    return undef;
  mbr_udp *u = data;
  u->closed = true;
  napi_delete_reference(env, u->callback);
  napi_delete_reference(env, u->resource);
  if (!u->delivering) {
    napi_async_destroy(env, u->async);
    u->async = NULL;
  }
  if (u->polling) {
    u->polling = false;
    uv_close((uv_handle_t *)&u->poll, on_close);
  }
  return undef;
}

/* The one's-complement sum of len bytes, folded later. */
static uint32_t sum16(const void *p, size_t len, uint32_t sum) {
  const uint8_t *b = p;
  for (; len > 1; len -= 2, b += 2)
    sum += (uint32_t)((b[0] << 8) | b[1]);
  if (len)
    sum += (uint32_t)(b[0] << 8);
  return sum;
}

static uint16_t fold(uint32_t sum) {
  while (sum >> 16)
    sum = (sum & 0xffff) + (sum >> 16);
  return (uint16_t)~sum;
}

static int raw_fd = -1;

/* udpSendFrom(srcAddress, srcPort, dstAddress, dstPort, data) → bytes sent */
static napi_value udp_send_from(napi_env env, napi_callback_info info) {
  MBR_ARGS(env, info, 5, argv, argc);
  struct in_addr src, dst;
  uint16_t sport, dport;
  void *data;
  size_t len;
  if (!ipv4_of(env, argv[0], "srcAddress", &src) ||
      !port_of(env, argv[1], "srcPort", &sport) ||
      !ipv4_of(env, argv[2], "dstAddress", &dst) ||
      !port_of(env, argv[3], "dstPort", &dport) ||
      !mbr_arg_bytes(env, argv[4], "data", &data, &len))
    return NULL;
  size_t total = sizeof(struct iphdr) + sizeof(struct udphdr) + len;
  if (total > MAX_DATAGRAM)
    return mbr_throw_range(env, "a UDP payload of %zu bytes does not fit one datagram", len);
  if (raw_fd < 0) {
    int fd = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
    if (fd < 0)
      return mbr_throw_errno(env, errno, "socket", "open the raw socket answers are sent from");
    raw_fd = fd; /* IPPROTO_RAW implies IP_HDRINCL; kept for the process's life */
  }
  unsigned char *pkt = malloc(total);
  if (!pkt)
    return mbr_throw_errno(env, ENOMEM, NULL, "send a UDP datagram");
  struct iphdr *ip = (struct iphdr *)pkt;
  struct udphdr *udp = (struct udphdr *)(ip + 1);
  memset(pkt, 0, sizeof *ip + sizeof *udp);
  memcpy(udp + 1, data, len);
  ip->version = 4;
  ip->ihl = 5;
  ip->ttl = 64;
  ip->protocol = IPPROTO_UDP;
  ip->tot_len = htons((uint16_t)total); /* the kernel fills id and the header checksum */
  ip->saddr = src.s_addr;
  ip->daddr = dst.s_addr;
  udp->source = htons(sport);
  udp->dest = htons(dport);
  udp->len = htons((uint16_t)(sizeof *udp + len));
  /* Pseudo-header (addresses, protocol, UDP length), then header and payload. */
  uint32_t sum = sum16(&ip->saddr, 8, 0) + IPPROTO_UDP + (uint32_t)(sizeof *udp + len);
  sum = sum16(udp, sizeof *udp + len, sum);
  uint16_t csum = fold(sum);
  udp->check = htons(csum ? csum : 0xffff);
  struct sockaddr_in to = {.sin_family = AF_INET, .sin_addr = dst};
  ssize_t n = sendto(raw_fd, pkt, total, MSG_DONTWAIT, (struct sockaddr *)&to, sizeof to);
  int e = errno;
  free(pkt);
  if (n < 0) {
    char from[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &src, from, sizeof from);
    return mbr_throw_errno(env, e, "sendto", "send %zu bytes from %s:%u to %s:%u", len, from,
                           sport, inet_ntoa(dst), dport);
  }
  return u32_value(env, (uint32_t)len);
}

bool mbr_init_udp_socket(napi_env env, napi_value exports) {
  static const mbr_export list[] = {
      {"udpOpen", udp_open},
      {"udpLocalPort", udp_local_port},
      {"udpSend", udp_send},
      {"udpClose", udp_close},
      {"udpSendFrom", udp_send_from},
      {NULL, NULL},
  };
  return mbr_define(env, exports, list);
}
