/* Map operations on fds: element CRUD, key iteration, batch operations with
 * a per-element fallback.
 *
 * Keys and values are raw bytes laid out as the C structs are; their sizes
 * come from the kernel (map-shape.h: asked once per fd) and Buffers of
 * another size are refused. Creating, pinning and closing fds: fd.c. Per-CPU maps take and return values of
 * round_up(value_size, 8) * possible CPUs bytes. */
#include "common.h"
#include "map-shape.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

static bool check_len(napi_env env, size_t len, __u32 want, const char *arg,
                      const char *what, const map_shape *m) {
  if (len == want)
    return true;
  mbr_throw_range(env, "%s %s: %s is %zu bytes, the map's is %u", what,
                  m->label, arg, len, want);
  return false;
}

/* Short keys are shown in hex so a failed operation names its entry. */
static const char *describe_key(const void *key, size_t len, char *buf,
                                size_t size) {
  if (len == 0 || len > 24 || size < len * 2 + 5) {
    snprintf(buf, size, "a %zu-byte key", len);
    return buf;
  }
  const unsigned char *k = key;
  strcpy(buf, "key ");
  for (size_t i = 0; i < len; i++)
    sprintf(buf + 4 + i * 2, "%02x", k[i]);
  return buf;
}

static bool unsupported(int err) {
  /* Maps without batch operations answer ENOTSUPP (524); older kernels
   * without the commands answer EINVAL. */
  return err == 524 || err == EOPNOTSUPP || err == EINVAL;
}

static napi_value make_undefined(napi_env env) {
  napi_value v;
  NAPI_CALL(env, napi_get_undefined(env, &v));
  return v;
}

static napi_value make_null(napi_env env) {
  napi_value v;
  NAPI_CALL(env, napi_get_null(env, &v));
  return v;
}

static napi_value make_bool(napi_env env, bool b) {
  napi_value v;
  NAPI_CALL(env, napi_get_boolean(env, b, &v));
  return v;
}

/* The map's shape, and the key checked against it. */
static bool shape_for_key(napi_env env, int fd, size_t key_len,
                          const char *what, map_shape *m) {
  return mbr_map_shape(env, fd, what, m) &&
         check_len(env, key_len, m->key_size, "key", what, m);
}

/* Throws "<verb> key 0a000001 <prep> map mbr_ct (fd 7): CODE". */
static napi_value throw_elem(napi_env env, int err, const char *verb,
                             const char *prep, const void *key, size_t key_len,
                             const map_shape *m) {
  char k[64];
  return mbr_throw_errno(env, err, "bpf", "%s %s %s %s", verb,
                         describe_key(key, key_len, k, sizeof k), prep,
                         m->label);
}

/* mapLookup(fd, key, flags = 0) → Buffer | null */
static napi_value map_lookup(napi_env env, napi_callback_info info) {
  MBR_ARGS(env, info, 3, argv, argc);
  int32_t fd;
  void *key;
  size_t key_len;
  uint32_t flags = 0;
  map_shape m;
  if (!mbr_arg_i32(env, argv[0], "fd", &fd) ||
      !mbr_arg_bytes(env, argv[1], "key", &key, &key_len) ||
      (!mbr_is_nullish(env, argv[2]) &&
       !mbr_arg_u32(env, argv[2], "flags", &flags)) ||
      !shape_for_key(env, fd, key_len, "look up a key in", &m))
    return NULL;
  napi_value buf;
  void *value;
  NAPI_CALL(env, napi_create_buffer(env, m.value_size, &value, &buf));
  if (bpf_map_lookup_elem_flags(fd, key, value, flags) == 0)
    return buf;
  if (errno == ENOENT)
    return make_null(env);
  return throw_elem(env, errno, "look up", "in", key, key_len, &m);
}

/* mapUpdate(fd, key, value, flags = BPF_ANY) */
static napi_value map_update(napi_env env, napi_callback_info info) {
  MBR_ARGS(env, info, 4, argv, argc);
  int32_t fd;
  void *key, *value;
  size_t key_len, value_len;
  uint32_t flags = BPF_ANY;
  map_shape m;
  if (!mbr_arg_i32(env, argv[0], "fd", &fd) ||
      !mbr_arg_bytes(env, argv[1], "key", &key, &key_len) ||
      !mbr_arg_bytes(env, argv[2], "value", &value, &value_len) ||
      (!mbr_is_nullish(env, argv[3]) &&
       !mbr_arg_u32(env, argv[3], "flags", &flags)) ||
      !shape_for_key(env, fd, key_len, "update", &m) ||
      !check_len(env, value_len, m.value_size, "value", "update", &m))
    return NULL;
  if (bpf_map_update_elem(fd, key, value, flags) == 0)
    return make_undefined(env);
  return throw_elem(env, errno, "update", "in", key, key_len, &m);
}

/* mapDelete(fd, key) → true, or false when the key was not there */
static napi_value map_delete(napi_env env, napi_callback_info info) {
  MBR_ARGS(env, info, 2, argv, argc);
  int32_t fd;
  void *key;
  size_t key_len;
  map_shape m;
  if (!mbr_arg_i32(env, argv[0], "fd", &fd) ||
      !mbr_arg_bytes(env, argv[1], "key", &key, &key_len) ||
      !shape_for_key(env, fd, key_len, "delete a key from", &m))
    return NULL;
  if (bpf_map_delete_elem(fd, key) == 0)
    return make_bool(env, true);
  if (errno == ENOENT)
    return make_bool(env, false);
  return throw_elem(env, errno, "delete", "from", key, key_len, &m);
}

/* mapGetNextKey(fd, key | null) → Buffer | null (null: no more keys) */
static napi_value map_get_next_key(napi_env env, napi_callback_info info) {
  MBR_ARGS(env, info, 2, argv, argc);
  int32_t fd;
  void *key = NULL;
  size_t key_len = 0;
  map_shape m;
  if (!mbr_arg_i32(env, argv[0], "fd", &fd) ||
      (!mbr_is_nullish(env, argv[1]) &&
       !mbr_arg_bytes(env, argv[1], "key", &key, &key_len)) ||
      (key ? !shape_for_key(env, fd, key_len, "iterate keys of", &m)
           : !mbr_map_shape(env, fd, "iterate keys of", &m)))
    return NULL;
  napi_value buf;
  void *next;
  NAPI_CALL(env, napi_create_buffer(env, m.key_size, &next, &buf));
  if (bpf_map_get_next_key(fd, key, next) == 0)
    return buf;
  if (errno == ENOENT)
    return make_null(env);
  return mbr_throw_errno(env, errno, "bpf", "iterate keys of %s", m.label);
}

/* A growable pair of key/value arrays. */
typedef struct {
  unsigned char *keys, *values;
  size_t n, cap, ks, vs;
} kv_array;

static bool kv_reserve(kv_array *a, size_t more) {
  if (a->n + more <= a->cap)
    return true;
  size_t cap = a->cap ? a->cap : 64;
  while (cap < a->n + more)
    cap *= 2;
  unsigned char *k = realloc(a->keys, cap * a->ks + 1);
  if (!k)
    return false;
  a->keys = k;
  unsigned char *v = realloc(a->values, cap * a->vs + 1);
  if (!v)
    return false;
  a->values = v;
  a->cap = cap;
  return true;
}

static void kv_free(kv_array *a) {
  free(a->keys);
  free(a->values);
}

/* Map types without batch commands answer ENOTSUPP (524), older kernels
 * without the commands EINVAL, and either leaves count as it was (or 0)
 * because no entry was touched. */
static bool no_batch_command(int err, __u32 count, size_t n) {
  return (count == 0 || count == n) && unsupported(err);
}

typedef enum { EACH_LOOKUP, EACH_UPDATE, EACH_DELETE } each_op;

/* The fallback of every batch command where there is none: the element
 * command on entries [0, n) in turn (keys and values back to back, ks and
 * vs bytes each). A key that is not there is skipped by a lookup (deleted
 * meanwhile: the entries found are packed to the front) and by a delete,
 * and fails an update (BPF_EXIST). Stops at the first failure and returns
 * its errno, else 0; *at is the entry it stopped at (n when done), *done
 * how many entries it read, wrote or deleted. */
static int each_entry(int fd, each_op op, unsigned char *keys,
                      unsigned char *values, size_t n, size_t ks, size_t vs,
                      __u64 flags, size_t *at, size_t *done) {
  *done = 0;
  for (*at = 0; *at < n; (*at)++) {
    unsigned char *key = keys + *at * ks;
    int r = op == EACH_DELETE   ? bpf_map_delete_elem(fd, key)
            : op == EACH_UPDATE ? bpf_map_update_elem(fd, key,
                                                      values + *at * vs, flags)
                                : bpf_map_lookup_elem(fd, key,
                                                      values + *done * vs);
    if (r < 0 && errno == ENOENT && op != EACH_UPDATE)
      continue;
    if (r < 0)
      return errno;
    if (op == EACH_LOOKUP)
      memmove(keys + *done * ks, key, ks);
    (*done)++;
  }
  return 0;
}

/* Reads every entry one by one: the keys first (get_next_key), then their
 * values. max_entries bounds the walk because a hash map restarts from its
 * first key when the previous key vanished. */
static int lookup_each(int fd, kv_array *a, size_t limit) {
  int err = 0;
  for (size_t steps = 0; steps <= limit; steps++) {
    if (!kv_reserve(a, 1))
      return ENOMEM;
    unsigned char *prev = a->n ? a->keys + (a->n - 1) * a->ks : NULL;
    if (bpf_map_get_next_key(fd, prev, a->keys + a->n * a->ks) < 0) {
      err = errno == ENOENT ? 0 : errno;
      break;
    }
    a->n++;
  }
  if (err)
    return err;
  size_t keys = a->n, at;
  return each_entry(fd, EACH_LOOKUP, a->keys, a->values, keys, a->ks, a->vs, 0,
                    &at, &a->n);
}

static napi_value batch_result(napi_env env, size_t count, bool batched) {
  napi_value r;
  NAPI_CALL(env, napi_create_object(env, &r));
  if (!mbr_set_u32(env, r, "count", (uint32_t)count) ||
      !mbr_set_bool(env, r, "batched", batched))
    return NULL;
  return r;
}

/* Throws "<verb> N entries of <map>: entry I (key ...)<how>: CODE" with
 * err.count = how many entries were changed before it. */
static napi_value throw_batch(napi_env env, int err, const char *verb,
                              size_t n, const map_shape *m, size_t at,
                              const unsigned char *keys, const char *how,
                              size_t count) {
  char k[64];
  napi_value e = mbr_errno_error(
      env, err, "bpf", "%s %zu entries of %s: entry %zu (%s)%s", verb, n,
      m->label, at, describe_key(keys + at * m->key_size, m->key_size, k, sizeof k),
      how);
  if (e)
    mbr_set_u32(env, e, "count", (uint32_t)count);
  return mbr_throw(env, e);
}

/* mapLookupBatch(fd, { batchSize = 256 }) →
 *   { keys: Buffer, values: Buffer, count, batched }
 * Reads every entry; `batched` says whether the kernel's batch command was
 * used (false: the map type has none and entries were read one by one). */
static napi_value map_lookup_batch(napi_env env, napi_callback_info info) {
  MBR_ARGS(env, info, 2, argv, argc);
  int32_t fd;
  uint32_t batch = 256;
  bool has_opts;
  map_shape m;
  if (!mbr_arg_i32(env, argv[0], "fd", &fd) ||
      !mbr_arg_options(env, argv[1], "options", &has_opts) ||
      !mbr_opt_u32(env, has_opts ? argv[1] : NULL, "batchSize", &batch) ||
      !mbr_map_shape(env, fd, "read all entries of", &m))
    return NULL;
  if (batch == 0)
    batch = 1;
  size_t ks = m.key_size, vs = m.value_size;
  kv_array a = {.ks = ks, .vs = vs};
  /* Hash maps use a 4-byte bucket cursor, arrays a key: room for both. */
  size_t tok_len = ks > 8 ? ks : 8;
  unsigned char *tok_in = calloc(1, tok_len), *tok_out = calloc(1, tok_len);
  bool first = true, batched = true;
  int err = 0;
  if (!tok_in || !tok_out) {
    err = ENOMEM;
    goto done;
  }
  for (;;) {
    if (!kv_reserve(&a, batch)) {
      err = ENOMEM;
      break;
    }
    __u32 count = batch;
    LIBBPF_OPTS(bpf_map_batch_opts, bo);
    int r = bpf_map_lookup_batch(fd, first ? NULL : tok_in, tok_out,
                                 a.keys + a.n * ks, a.values + a.n * vs,
                                 &count, &bo);
    int e = r < 0 ? errno : 0;
    if (r == 0 || e == ENOENT) {
      a.n += count;
      if (e == ENOENT)
        break;
      memcpy(tok_in, tok_out, tok_len);
      first = false;
      continue;
    }
    /* One hash bucket holds more entries than a batch: ask for more. */
    if (e == ENOSPC && count == 0 && batch < (1u << 20)) {
      batch *= 2;
      continue;
    }
    if (first && a.n == 0 && unsupported(e)) {
      batched = false;
      err = lookup_each(fd, &a, (size_t)m.max_entries * 2 + 1);
      break;
    }
    err = e;
    break;
  }
done:
  free(tok_in);
  free(tok_out);
  if (err) {
    kv_free(&a);
    return mbr_throw_errno(env, err, "bpf", "read all entries of %s", m.label);
  }
  napi_value r = NULL, keys, values;
  if ((keys = mbr_copy_buffer(env, a.keys, a.n * ks)) &&
      (values = mbr_copy_buffer(env, a.values, a.n * vs)) &&
      (r = batch_result(env, a.n, batched)) &&
      napi_set_named_property(env, r, "keys", keys) == napi_ok &&
      napi_set_named_property(env, r, "values", values) == napi_ok) {
    kv_free(&a);
    return r;
  }
  kv_free(&a);
  return NULL;
}

static bool batch_count(napi_env env, size_t len, uint32_t size,
                        const char *arg, const char *what, const map_shape *m,
                        size_t *count) {
  if (size == 0 || len % size != 0) {
    mbr_throw_range(env, "%s %s: %s hold %zu bytes, not a whole number of "
                         "%u-byte entries",
                    what, m->label, arg, len, size);
    return false;
  }
  *count = len / size;
  return true;
}

/* mapUpdateBatch(fd, keys, values, flags = BPF_ANY) → { count, batched }.
 * keys and values hold count entries back to back. On failure err.count
 * says how many entries were written before it. */
static napi_value map_update_batch(napi_env env, napi_callback_info info) {
  MBR_ARGS(env, info, 4, argv, argc);
  int32_t fd;
  void *keys, *values;
  size_t keys_len, values_len, n, nv;
  uint32_t flags = BPF_ANY;
  map_shape m;
  if (!mbr_arg_i32(env, argv[0], "fd", &fd) ||
      !mbr_arg_bytes(env, argv[1], "keys", &keys, &keys_len) ||
      !mbr_arg_bytes(env, argv[2], "values", &values, &values_len) ||
      (!mbr_is_nullish(env, argv[3]) &&
       !mbr_arg_u32(env, argv[3], "flags", &flags)) ||
      !mbr_map_shape(env, fd, "update entries of", &m) ||
      !batch_count(env, keys_len, m.key_size, "keys", "update entries of", &m,
                   &n) ||
      !batch_count(env, values_len, m.value_size, "values",
                   "update entries of", &m, &nv))
    return NULL;
  if (n != nv)
    return mbr_throw_range(env, "update entries of %s: keys hold %zu entries "
                                "but values hold %zu",
                           m.label, n, nv);
  if (n == 0)
    return batch_result(env, 0, true);
  LIBBPF_OPTS(bpf_map_batch_opts, bo, .elem_flags = flags);
  __u32 count = (__u32)n;
  if (bpf_map_update_batch(fd, keys, values, &count, &bo) == 0)
    return batch_result(env, n, true);
  int e = errno;
  size_t at = count, done = count;
  bool batched = !no_batch_command(e, count, n);
  if (!batched) {
    e = each_entry(fd, EACH_UPDATE, keys, values, n, m.key_size, m.value_size,
                   flags, &at, &done);
    if (!e)
      return batch_result(env, n, false);
  }
  return throw_batch(env, e, "update", n, &m, at, keys,
                     batched ? "" : " one by one", done);
}

/* mapDeleteBatch(fd, keys) → { count, batched }: count is the number of
 * entries deleted; keys that are not in the map are skipped. */
static napi_value map_delete_batch(napi_env env, napi_callback_info info) {
  MBR_ARGS(env, info, 2, argv, argc);
  int32_t fd;
  void *keys;
  size_t keys_len, n;
  map_shape m;
  if (!mbr_arg_i32(env, argv[0], "fd", &fd) ||
      !mbr_arg_bytes(env, argv[1], "keys", &keys, &keys_len) ||
      !mbr_map_shape(env, fd, "delete entries of", &m) ||
      !batch_count(env, keys_len, m.key_size, "keys", "delete entries of", &m,
                   &n))
    return NULL;
  size_t ks = m.key_size, pos = 0, deleted = 0;
  bool batched = true;
  int e = 0;
  while (pos < n) {
    LIBBPF_OPTS(bpf_map_batch_opts, bo);
    __u32 count = (__u32)(n - pos);
    int r = bpf_map_delete_batch(fd, (char *)keys + pos * ks, &count, &bo);
    e = r < 0 ? errno : 0;
    deleted += count;
    if (e == ENOENT) {
      /* The kernel stops at the first missing key: skip it, go on. */
      pos += count + 1;
      e = 0;
      continue;
    }
    if (e && pos == 0 && no_batch_command(e, count, n)) {
      batched = false;
      e = each_entry(fd, EACH_DELETE, keys, NULL, n, ks, 0, 0, &pos, &deleted);
      break;
    }
    pos = e ? pos + count : n;
    break;
  }
  if (!e)
    return batch_result(env, deleted, batched);
  return throw_batch(env, e, "delete", n, &m, pos, keys, "", deleted);
}

bool mbr_init_map(napi_env env, napi_value exports) {
  static const mbr_export list[] = {
      {"mapLookup", map_lookup},
      {"mapUpdate", map_update},
      {"mapDelete", map_delete},
      {"mapGetNextKey", map_get_next_key},
      {"mapLookupBatch", map_lookup_batch},
      {"mapUpdateBatch", map_update_batch},
      {"mapDeleteBatch", map_delete_batch},
      {NULL, NULL},
  };
  return mbr_define(env, exports, list);
}
