/* BPF_PROG_TEST_RUN: runs a loaded program on packet bytes in the kernel,
 * without any interface, and returns its verdict and the rewritten packet.
 *
 * For tc programs the context is a struct __sk_buff; the kernel accepts only
 * mark, priority, ingress_ifindex, ifindex, cb[], tstamp, wire_len,
 * gso_segs, gso_size and hwtstamp in ctxIn (every other byte must be zero)
 * and an ifindex must name a device of the caller's netns (1 is lo). */
#include "common.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>
#include <linux/bpf.h>

/* Room for programs that grow the packet (encapsulation, head changes). */
#define DATA_OUT_SLACK 256

/* progTestRun(progFd, data, { repeat = 1, ctxIn?, ctxOutSize?, dataOutSize?,
 *             flags = 0, cpu = 0 }) →
 *   { retval, dataOut: Buffer, ctxOut: Buffer | null, duration } */
static napi_value prog_test_run(napi_env env, napi_callback_info info) {
  MBR_ARGS(env, info, 3, argv, argc);
  int32_t fd;
  void *data, *ctx_in = NULL;
  size_t data_len, ctx_len = 0;
  bool has_opts, has_ctx = false;
  uint32_t repeat = 1, flags = 0, cpu = 0, ctx_out_size = 0, data_out_size = 0;
  napi_value opts = NULL, ctx_v;
  if (!mbr_arg_i32(env, argv[0], "progFd", &fd) ||
      !mbr_arg_bytes(env, argv[1], "data", &data, &data_len) ||
      !mbr_arg_options(env, argv[2], "options", &has_opts) ||
      !mbr_opt_u32(env, (opts = has_opts ? argv[2] : NULL), "repeat",
                   &repeat) ||
      !mbr_opt_u32(env, opts, "flags", &flags) ||
      !mbr_opt_u32(env, opts, "cpu", &cpu) ||
      !mbr_opt_u32(env, opts, "dataOutSize", &data_out_size) ||
      !mbr_opt(env, opts, "ctxIn", &ctx_v, &has_ctx) ||
      (has_ctx && !mbr_arg_bytes(env, ctx_v, "ctxIn", &ctx_in, &ctx_len)))
    return NULL;
  ctx_out_size = (uint32_t)ctx_len;
  if (!mbr_opt_u32(env, opts, "ctxOutSize", &ctx_out_size))
    return NULL;
  if (!data_out_size)
    data_out_size = (uint32_t)data_len + DATA_OUT_SLACK;

  unsigned char *out = NULL, *ctx_out = NULL;
  napi_value result = NULL;
  int err = 0;
  LIBBPF_OPTS(bpf_test_run_opts, o);
  for (int attempt = 0; attempt < 2; attempt++) {
    free(out);
    out = malloc(data_out_size ? data_out_size : 1);
    free(ctx_out);
    ctx_out = ctx_out_size ? calloc(1, ctx_out_size) : NULL;
    if (!out || (ctx_out_size && !ctx_out)) {
      err = ENOMEM;
      break;
    }
    memset(&o, 0, sizeof o);
    o.sz = sizeof o;
    o.data_in = data;
    o.data_size_in = (__u32)data_len;
    o.data_out = out;
    o.data_size_out = data_out_size;
    o.ctx_in = ctx_in;
    o.ctx_size_in = (__u32)ctx_len;
    o.ctx_out = ctx_out;
    o.ctx_size_out = ctx_out_size;
    o.repeat = (int)repeat;
    o.flags = flags;
    o.cpu = cpu;
    err = bpf_prog_test_run_opts(fd, &o) < 0 ? errno : 0;
    /* The packet outgrew data_out: the kernel reports the size it needed. */
    if (err == ENOSPC && o.data_size_out > data_out_size) {
      data_out_size = o.data_size_out;
      continue;
    }
    break;
  }
  if (err) {
    mbr_throw_errno(env, err, "bpf", "test-run program fd %d on a %zu-byte "
                                     "packet%s",
                    fd, data_len, ctx_len ? " with a context" : "");
    goto out;
  }
  napi_value r, data_v, ctx_out_v;
  if (napi_create_object(env, &r) != napi_ok ||
      !mbr_set_u32(env, r, "retval", o.retval) ||
      !mbr_set_u32(env, r, "duration", o.duration) ||
      !(data_v = mbr_copy_buffer(env, out, o.data_size_out)) ||
      napi_set_named_property(env, r, "dataOut", data_v) != napi_ok)
    goto out;
  if (ctx_out) {
    if (!(ctx_out_v = mbr_copy_buffer(env, ctx_out, o.ctx_size_out)) ||
        napi_set_named_property(env, r, "ctxOut", ctx_out_v) != napi_ok)
      goto out;
  } else if (!mbr_set_null(env, r, "ctxOut")) {
    goto out;
  }
  result = r;
out:
  free(out);
  free(ctx_out);
  return result;
}

/* The layout of struct __sk_buff in the headers this addon was built with,
 * so the TS side encodes contexts without copying offsets by hand. */
static bool sk_buff_layout(napi_env env, napi_value exports) {
  napi_value layout, offsets;
  NAPI_CHECK(env, napi_create_object(env, &layout));
  NAPI_CHECK(env, napi_create_object(env, &offsets));
#define OFF(js, field)                                                         \
  if (!mbr_set_u32(env, offsets, js, offsetof(struct __sk_buff, field)))       \
    return false;
  OFF("len", len)
  OFF("pktType", pkt_type)
  OFF("mark", mark)
  OFF("queueMapping", queue_mapping)
  OFF("protocol", protocol)
  OFF("priority", priority)
  OFF("ingressIfindex", ingress_ifindex)
  OFF("ifindex", ifindex)
  OFF("tcIndex", tc_index)
  OFF("cb", cb)
  OFF("hash", hash)
  OFF("tcClassid", tc_classid)
  OFF("tstamp", tstamp)
  OFF("wireLen", wire_len)
  OFF("gsoSegs", gso_segs)
  OFF("gsoSize", gso_size)
  OFF("hwtstamp", hwtstamp)
#undef OFF
  if (!mbr_set_u32(env, layout, "size", sizeof(struct __sk_buff)))
    return false;
  NAPI_CHECK(env, napi_set_named_property(env, layout, "offsets", offsets));
  NAPI_CHECK(env, napi_set_named_property(env, exports, "skBuffLayout", layout));
  return true;
}

bool mbr_init_test_run(napi_env env, napi_value exports) {
  static const mbr_export list[] = {
      {"progTestRun", prog_test_run},
      {NULL, NULL},
  };
  return mbr_define(env, exports, list) && sk_buff_layout(env, exports);
}
