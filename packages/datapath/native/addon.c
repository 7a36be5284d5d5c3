/* membrane_bpf: the N-API addon over libbpf used by @membrane/datapath.
 *
 * Module layout: object.c (BPF objects), map.c (map operations, pins),
 * map-shape.c (each map fd's key and value sizes, asked once),
 * tc.c (clsact attach), ringbuf.c (ring buffer on the libuv loop),
 * test-run.c (BPF_PROG_TEST_RUN), sockopt.c (socket options Node lacks),
 * proxy-socket.c (the L7 proxy's transparent sockets),
 * bpffs.c (the BPF filesystem), cgroup.c (cgroup programs and the cgroup v2
 * filesystem). This file registers them and answers what
 * the kernel and libbpf can do. */
#include "common.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

/* libbpfVersion() → "1.1" (the library loaded at run time) */
static napi_value libbpf_version(napi_env env, napi_callback_info info) {
  char v[32];
  snprintf(v, sizeof v, "%u.%u", libbpf_major_version(),
           libbpf_minor_version());
  napi_value s;
  NAPI_CALL(env, napi_create_string_utf8(env, v, NAPI_AUTO_LENGTH, &s));
  return s;
}

/* numPossibleCpus() → number (per-CPU values hold one slot per possible CPU) */
static napi_value num_possible_cpus(napi_env env, napi_callback_info info) {
  int n = libbpf_num_possible_cpus();
  if (n < 0)
    return mbr_throw_errno(env, -n, NULL, "count possible CPUs");
  napi_value v;
  NAPI_CALL(env, napi_create_int32(env, n, &v));
  return v;
}

static napi_value probe_result(napi_env env, int r, const char *what,
                               unsigned id) {
  /* 1 supported, 0 not, < 0 the probe itself failed (EPERM when not root). */
  if (r < 0)
    return mbr_throw_errno(env, -r, "bpf", "probe %s %u", what, id);
  napi_value b;
  NAPI_CALL(env, napi_get_boolean(env, r == 1, &b));
  return b;
}

/* probeMapType(type) → boolean */
static napi_value probe_map_type(napi_env env, napi_callback_info info) {
  MBR_ARGS(env, info, 1, argv, argc);
  uint32_t t;
  if (!mbr_arg_u32(env, argv[0], "type", &t))
    return NULL;
  return probe_result(env, libbpf_probe_bpf_map_type(t, NULL), "map type", t);
}

/* probeProgType(type) → boolean */
static napi_value probe_prog_type(napi_env env, napi_callback_info info) {
  MBR_ARGS(env, info, 1, argv, argc);
  uint32_t t;
  if (!mbr_arg_u32(env, argv[0], "type", &t))
    return NULL;
  return probe_result(env, libbpf_probe_bpf_prog_type(t, NULL), "program type",
                      t);
}

/* probeHelper(progType, helperId) → boolean */
static napi_value probe_helper(napi_env env, napi_callback_info info) {
  MBR_ARGS(env, info, 2, argv, argc);
  uint32_t t, h;
  if (!mbr_arg_u32(env, argv[0], "progType", &t) ||
      !mbr_arg_u32(env, argv[1], "helperId", &h))
    return NULL;
  return probe_result(env, libbpf_probe_bpf_helper(t, h, NULL), "helper", h);
}

/* Name → number tables from libbpf itself ("lpm_trie" → 11). */
static bool type_table(napi_env env, napi_value exports, const char *key,
                       const char *(*name_of)(unsigned)) {
  napi_value table;
  NAPI_CHECK(env, napi_create_object(env, &table));
  for (unsigned t = 0; t < 256; t++) {
    const char *n = name_of(t);
    if (!n)
      break;
    if (!mbr_set_u32(env, table, n, t))
      return false;
  }
  NAPI_CHECK(env, napi_set_named_property(env, exports, key, table));
  return true;
}

static const char *map_type_name(unsigned t) {
  return libbpf_bpf_map_type_str((enum bpf_map_type)t);
}
static const char *prog_type_name(unsigned t) {
  return libbpf_bpf_prog_type_str((enum bpf_prog_type)t);
}

static napi_value init(napi_env env, napi_value exports) {
  mbr_log_install();
  static const mbr_export list[] = {
      {"libbpfVersion", libbpf_version},
      {"numPossibleCpus", num_possible_cpus},
      {"probeMapType", probe_map_type},
      {"probeProgType", probe_prog_type},
      {"probeHelper", probe_helper},
      {NULL, NULL},
  };
  if (!mbr_define(env, exports, list) ||
      !type_table(env, exports, "mapTypes", map_type_name) ||
      !type_table(env, exports, "progTypes", prog_type_name) ||
      !mbr_init_object(env, exports) || !mbr_init_map(env, exports) || !mbr_init_fd(env, exports) ||
      !mbr_init_tc(env, exports) || !mbr_init_ringbuf(env, exports) ||
      !mbr_init_test_run(env, exports) || !mbr_init_sockopt(env, exports) ||
      !mbr_init_proxy_socket(env, exports) ||
      !mbr_init_udp_socket(env, exports) ||
      !mbr_init_bpffs(env, exports) || !mbr_init_cgroup(env, exports))
    return NULL;
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
