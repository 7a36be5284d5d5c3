/* BPF ring buffer (BPF_MAP_TYPE_RINGBUF) consumption on the libuv loop.
 *
 * libbpf's ring_buffer owns an epoll fd that becomes readable when the map
 * has records; a uv_poll watches that fd, so the JS thread never blocks. On
 * each wakeup the available records are copied into one batch and the JS
 * callback receives ONE Buffer per batch:
 *
 *   [u32 length, little-endian][length bytes of record] … repeated
 *
 * Records are not padded. A batch is cut at maxBatchBytes (the record that
 * crosses the limit is still in it); at most MAX_ROUNDS batches are delivered
 * per wakeup so a busy producer cannot starve the loop (the fd stays
 * readable and libuv comes back). */
#include "common.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/libbpf.h>
#include <uv.h>

#define MAX_ROUNDS 16
/* Returned by the sample callback when the batch is full; libbpf stops
 * after committing the consumer position past the record just copied. */
#define BATCH_FULL (-ENOBUFS)

typedef struct {
  napi_env env;
  struct ring_buffer *rb;
  uv_poll_t poll;
  napi_ref callback;
  napi_ref resource;
  napi_async_context async;
  unsigned char *batch;
  size_t len, cap, max_batch;
  uint64_t records; /* copied so far, over the ring's lifetime */
  int map_fd;
  bool polling;    /* uv_poll started and not yet closed */
  bool delivering; /* inside the JS callback */
  bool closed;
} mbr_ringbuf;

static const napi_type_tag RINGBUF_TAG = {0x6d627272696e6762ULL,
                                          0x4d454d4252414e45ULL};

static int on_sample(void *ctx, void *data, size_t size) {
  mbr_ringbuf *r = ctx;
  size_t need = r->len + 4 + size;
  if (need > r->cap) {
    size_t cap = r->cap ? r->cap : 4096;
    while (cap < need)
      cap *= 2;
    unsigned char *b = realloc(r->batch, cap);
    if (!b)
      return -ENOMEM;
    r->batch = b;
    r->cap = cap;
  }
  uint32_t n = (uint32_t)size;
  unsigned char *p = r->batch + r->len;
  p[0] = n & 0xff;
  p[1] = (n >> 8) & 0xff;
  p[2] = (n >> 16) & 0xff;
  p[3] = (n >> 24) & 0xff;
  memcpy(p + 4, data, size);
  r->len = need;
  r->records++;
  return r->len >= r->max_batch ? BATCH_FULL : 0;
}

/* Calls the JS callback with the pending batch. An exception thrown by the
 * callback becomes an uncaught exception, as with any event emitter. */
static void deliver(mbr_ringbuf *r) {
  if (r->len == 0 || r->closed)
    return;
  napi_env env = r->env;
  napi_value buf, cb, resource, result;
  void *copy;
  size_t len = r->len;
  r->len = 0;
  if (napi_create_buffer_copy(env, len, r->batch, &copy, &buf) != napi_ok ||
      napi_get_reference_value(env, r->callback, &cb) != napi_ok ||
      napi_get_reference_value(env, r->resource, &resource) != napi_ok)
    return;
  r->delivering = true;
  napi_status s =
      napi_make_callback(env, r->async, resource, cb, 1, &buf, &result);
  r->delivering = false;
  if (r->closed && r->async) {
    napi_async_destroy(env, r->async);
    r->async = NULL;
  }
  if (s == napi_pending_exception) {
    napi_value exc;
    if (napi_get_and_clear_last_exception(env, &exc) == napi_ok)
      napi_fatal_exception(env, exc);
  }
}

/* Drains what is available, in up to `rounds` batches: returns the records
 * delivered, or -errno. */
static int64_t drain(mbr_ringbuf *r, int rounds) {
  uint64_t before = r->records;
  for (int i = 0; i < rounds && !r->closed; i++) {
    int n = ring_buffer__consume(r->rb);
    deliver(r);
    if (n == BATCH_FULL)
      continue;
    if (n < 0)
      return n;
    break;
  }
  return (int64_t)(r->records - before);
}

static void on_poll(uv_poll_t *handle, int status, int events) {
  mbr_ringbuf *r = handle->data;
  if (r->closed || status < 0)
    return;
  napi_handle_scope scope;
  if (napi_open_handle_scope(r->env, &scope) != napi_ok)
    return;
  drain(r, MAX_ROUNDS);
  napi_close_handle_scope(r->env, scope);
}

static void on_close(uv_handle_t *handle) {
  mbr_ringbuf *r = handle->data;
  ring_buffer__free(r->rb);
  free(r->batch);
  free(r);
}

/* Undoes what ringbuf_open set up before it failed. */
static void open_failed(napi_env env, mbr_ringbuf *r, napi_value handle,
                        bool poll_inited) {
  void *unused;
  if (handle)
    napi_remove_wrap(env, handle, &unused);
  if (r->callback)
    napi_delete_reference(env, r->callback);
  if (r->resource)
    napi_delete_reference(env, r->resource);
  if (r->async)
    napi_async_destroy(env, r->async);
  r->closed = true;
  if (poll_inited) {
    /* An initialised uv handle is freed through libuv only. */
    uv_close((uv_handle_t *)&r->poll, on_close);
  } else {
    ring_buffer__free(r->rb);
    free(r->batch);
    free(r);
  }
}

/* ringbufOpen(mapFd, callback(batch: Buffer), { maxBatchBytes = 1 MiB })
 *   → handle */
static napi_value ringbuf_open(napi_env env, napi_callback_info info) {
  MBR_ARGS(env, info, 3, argv, argc);
  int32_t fd;
  bool has_opts;
  uint32_t max_batch = 1 << 20;
  if (!mbr_arg_i32(env, argv[0], "mapFd", &fd) ||
      !mbr_arg_function(env, argv[1], "callback") ||
      !mbr_arg_options(env, argv[2], "options", &has_opts) ||
      !mbr_opt_u32(env, has_opts ? argv[2] : NULL, "maxBatchBytes", &max_batch))
    return NULL;
  uv_loop_t *loop;
  NAPI_CALL(env, napi_get_uv_event_loop(env, &loop));

  mbr_ringbuf *r = calloc(1, sizeof *r);
  if (!r)
    return mbr_throw_errno(env, ENOMEM, NULL, "open ring buffer map fd %d", fd);
  r->env = env;
  r->map_fd = fd;
  r->max_batch = max_batch ? max_batch : 1;
  mbr_log_reset();
  r->rb = ring_buffer__new(fd, on_sample, r, NULL);
  if (!r->rb) {
    int e = errno;
    free(r);
    napi_value err =
        mbr_errno_error(env, e, "bpf", "open ring buffer map fd %d", fd);
    mbr_attach_log(env, err);
    return mbr_throw(env, err);
  }

  napi_value handle = mbr_handle_new(env, &RINGBUF_TAG, "ring buffer", r, NULL);
  napi_value name;
  if (!handle ||
      napi_create_reference(env, argv[1], 1, &r->callback) != napi_ok ||
      napi_create_reference(env, handle, 1, &r->resource) != napi_ok ||
      napi_create_string_utf8(env, "membrane:ringbuf", NAPI_AUTO_LENGTH,
                              &name) != napi_ok ||
      napi_async_init(env, handle, name, &r->async) != napi_ok) {
    mbr_throw_napi(env, napi_generic_failure, "ringbufOpen");
    open_failed(env, r, handle, false);
    return NULL;
  }

  int uerr = uv_poll_init(loop, &r->poll, ring_buffer__epoll_fd(r->rb));
  if (uerr) {
    open_failed(env, r, handle, false);
    return mbr_throw_errno(env, -uerr, "epoll_ctl",
                           "watch ring buffer map fd %d", fd);
  }
  r->poll.data = r;
  uerr = uv_poll_start(&r->poll, UV_READABLE, on_poll);
  if (uerr) {
    open_failed(env, r, handle, true);
    return mbr_throw_errno(env, -uerr, "epoll_ctl",
                           "watch ring buffer map fd %d", fd);
  }
  r->polling = true;
  return handle;
}

/* ringbufConsume(handle) → records consumed: drains now, delivering through
 * the callback before returning (for tests and shutdown). */
static napi_value ringbuf_consume(napi_env env, napi_callback_info info) {
  MBR_ARGS(env, info, 1, argv, argc);
  mbr_ringbuf *r = mbr_handle_get(env, argv[0], &RINGBUF_TAG, "ring buffer");
  if (!r)
    return NULL;
  if (r->delivering)
    return mbr_throw_code(env, "MEMBRANE_E_REENTRANT",
                          "ringbufConsume called from its own callback");
  int64_t n = drain(r, 1 << 30);
  if (n < 0)
    return mbr_throw_errno(env, (int)-n, NULL, "consume ring buffer map fd %d",
                           r->map_fd);
  napi_value v;
  NAPI_CALL(env, napi_create_double(env, (double)n, &v));
  return v;
}

/* ringbufClose(handle): stops delivery at once (also from inside the
 * callback); memory is freed when libuv has closed the watcher. Closing
 * twice is a no-op. */
static napi_value ringbuf_close(napi_env env, napi_callback_info info) {
  MBR_ARGS(env, info, 1, argv, argc);
  napi_value undef;
  NAPI_CALL(env, napi_get_undefined(env, &undef));
  napi_valuetype t;
  bool tagged = false;
  if (napi_typeof(env, argv[0], &t) != napi_ok || t != napi_object ||
      napi_check_object_type_tag(env, argv[0], &RINGBUF_TAG, &tagged) !=
          napi_ok ||
      !tagged)
    return mbr_throw_type(env, "expected a ring buffer handle");
  void *data = NULL;
  if (napi_remove_wrap(env, argv[0], &data) != napi_ok || !data)
    return undef;
  mbr_ringbuf *r = data;
  r->closed = true;
  napi_delete_reference(env, r->callback);
  r->callback = NULL;
  napi_delete_reference(env, r->resource);
  r->resource = NULL;
  /* A callback in progress still runs in this async context: deliver()
   * destroys it when the callback returns. */
  if (!r->delivering) {
    napi_async_destroy(env, r->async);
    r->async = NULL;
  }
  if (r->polling) {
    r->polling = false;
    uv_close((uv_handle_t *)&r->poll, on_close);
  }
  return undef;
}

bool mbr_init_ringbuf(napi_env env, napi_value exports) {
  static const mbr_export list[] = {
      {"ringbufOpen", ringbuf_open},
      {"ringbufConsume", ringbuf_consume},
      {"ringbufClose", ringbuf_close},
      {NULL, NULL},
  };
  return mbr_define(env, exports, list);
}
