/* Map operations on fds: element CRUD, key iteration, batch operations with
 * a per-element fallback, map creation (inner maps of hash-of-maps), pins,
 * and object info.
 *
 * Keys and values are raw bytes laid out as the C structs are; their sizes
 * come from the kernel (one BPF_OBJ_GET_INFO_BY_FD per call) and Buffers of
 * another size are refused. Per-CPU maps take and return values of
 * round_up(value_size, 8) * possible CPUs bytes. */
#include "common.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

/* What an operation needs to know about a map: the kernel reads exactly
 * key_size and value_size bytes from the pointers it is given, so every
 * Buffer is checked against them before the call (a short Buffer would
 * otherwise let the kernel read past it). */
typedef struct {
  __u32 type, key_size, value_size, max_entries;
  char label[64]; /* "map mbr_policy (fd 7)" */
} map_shape;

static bool is_percpu(__u32 type) {
  return type == BPF_MAP_TYPE_PERCPU_HASH || type == BPF_MAP_TYPE_PERCPU_ARRAY ||
         type == BPF_MAP_TYPE_LRU_PERCPU_HASH ||
         type == BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE;
}

/* Fills *m from the kernel; throws "<what> map fd N: CODE" on failure. */
static bool get_shape(napi_env env, int fd, const char *what, map_shape *m) {
  struct bpf_map_info info;
  __u32 len = sizeof info;
  memset(&info, 0, sizeof info);
  if (bpf_obj_get_info_by_fd(fd, &info, &len) < 0) {
    mbr_throw_errno(env, errno, "bpf", "%s map fd %d", what, fd);
    return false;
  }
  m->type = info.type;
  m->key_size = info.key_size;
  m->value_size = info.value_size;
  m->max_entries = info.max_entries;
  /* Per-CPU values hold one 8-byte-aligned slot per possible CPU. */
  if (is_percpu(info.type)) {
    int cpus = libbpf_num_possible_cpus();
    if (cpus > 0)
      m->value_size = ((info.value_size + 7) / 8) * 8 * (__u32)cpus;
  }
  if (info.name[0])
    snprintf(m->label, sizeof m->label, "map %s (fd %d)", info.name, fd);
  else
    snprintf(m->label, sizeof m->label, "map fd %d", fd);
  return true;
}

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
      !get_shape(env, fd, "look up a key in", &m) ||
      !check_len(env, key_len, m.key_size, "key", "look up a key in", &m))
    return NULL;
  napi_value buf;
  void *value;
  NAPI_CALL(env, napi_create_buffer(env, m.value_size, &value, &buf));
  if (bpf_map_lookup_elem_flags(fd, key, value, flags) == 0)
    return buf;
  int e = errno;
  if (e == ENOENT) {
    napi_value null;
    NAPI_CALL(env, napi_get_null(env, &null));
    return null;
  }
  char k[64];
  return mbr_throw_errno(env, e, "bpf", "look up %s in %s",
                         describe_key(key, key_len, k, sizeof k), m.label);
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
      !get_shape(env, fd, "update", &m) ||
      !check_len(env, key_len, m.key_size, "key", "update", &m) ||
      !check_len(env, value_len, m.value_size, "value", "update", &m))
    return NULL;
  if (bpf_map_update_elem(fd, key, value, flags) == 0)
    return make_undefined(env);
  int e = errno;
  char k[64];
  return mbr_throw_errno(env, e, "bpf", "update %s in %s",
                         describe_key(key, key_len, k, sizeof k), m.label);
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
      !get_shape(env, fd, "delete a key from", &m) ||
      !check_len(env, key_len, m.key_size, "key", "delete a key from", &m))
    return NULL;
  napi_value result;
  if (bpf_map_delete_elem(fd, key) == 0) {
    NAPI_CALL(env, napi_get_boolean(env, true, &result));
    return result;
  }
  int e = errno;
  if (e == ENOENT) {
    NAPI_CALL(env, napi_get_boolean(env, false, &result));
    return result;
  }
  char k[64];
  return mbr_throw_errno(env, e, "bpf", "delete %s from %s",
                         describe_key(key, key_len, k, sizeof k), m.label);
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
      !get_shape(env, fd, "iterate keys of", &m) ||
      (key && !check_len(env, key_len, m.key_size, "key", "iterate keys of",
                         &m)))
    return NULL;
  napi_value buf;
  void *next;
  NAPI_CALL(env, napi_create_buffer(env, m.key_size, &next, &buf));
  if (bpf_map_get_next_key(fd, key, next) == 0)
    return buf;
  int e = errno;
  if (e == ENOENT) {
    napi_value null;
    NAPI_CALL(env, napi_get_null(env, &null));
    return null;
  }
  return mbr_throw_errno(env, e, "bpf", "iterate keys of %s", m.label);
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

/* Walks the map with get_next_key + lookup. Entries deleted meanwhile are
 * skipped; max_entries bounds the walk because a hash map restarts from its
 * first key when the previous key vanished. */
static int dump_by_iteration(int fd, kv_array *a, size_t limit) {
  unsigned char *prev = malloc(a->ks ? a->ks : 1);
  unsigned char *next = malloc(a->ks ? a->ks : 1);
  int err = 0;
  bool first = true;
  if (!prev || !next) {
    err = ENOMEM;
    goto out;
  }
  for (size_t steps = 0; steps <= limit; steps++) {
    if (bpf_map_get_next_key(fd, first ? NULL : prev, next) < 0) {
      err = errno == ENOENT ? 0 : errno;
      break;
    }
    first = false;
    if (!kv_reserve(a, 1)) {
      err = ENOMEM;
      break;
    }
    if (bpf_map_lookup_elem(fd, next, a->values + a->n * a->vs) == 0) {
      memcpy(a->keys + a->n * a->ks, next, a->ks);
      a->n++;
    } else if (errno != ENOENT) {
      err = errno;
      break;
    }
    memcpy(prev, next, a->ks);
  }
out:
  free(prev);
  free(next);
  return err;
}

static napi_value batch_result(napi_env env, size_t count, bool batched) {
  napi_value r;
  NAPI_CALL(env, napi_create_object(env, &r));
  if (!mbr_set_u32(env, r, "count", (uint32_t)count) ||
      !mbr_set_bool(env, r, "batched", batched))
    return NULL;
  return r;
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
      !get_shape(env, fd, "read all entries of", &m))
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
      err = dump_by_iteration(fd, &a, (size_t)m.max_entries * 2 + 1);
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
      !get_shape(env, fd, "update entries of", &m) ||
      !batch_count(env, keys_len, m.key_size, "keys", "update entries of", &m,
                   &n) ||
      !batch_count(env, values_len, m.value_size, "values",
                   "update entries of", &m, &nv))
    return NULL;
  size_t ks = m.key_size, vs = m.value_size;
  if (n != nv)
    return mbr_throw_range(env, "update entries of %s: keys hold %zu entries "
                                "but values hold %zu",
                           m.label, n, nv);
  if (n == 0)
    return batch_result(env, 0, true);
  LIBBPF_OPTS(bpf_map_batch_opts, bo, .elem_flags = flags);
  __u32 count = (__u32)n;
  int r = bpf_map_update_batch(fd, keys, values, &count, &bo);
  if (r == 0)
    return batch_result(env, n, true);
  int e = errno;
  size_t done = count;
  bool batched = true;
  /* A kernel without the command leaves count as it was. */
  if ((count == 0 || count == n) && unsupported(e)) {
    batched = false;
    for (done = 0; done < n; done++) {
      if (bpf_map_update_elem(fd, (char *)keys + done * ks,
                              (char *)values + done * vs, flags) < 0)
        break;
    }
    if (done == n)
      return batch_result(env, n, false);
    e = errno;
  }
  char k[64];
  napi_value err = mbr_errno_error(
      env, e, "bpf", "update %zu entries of %s: entry %zu (%s)%s", n, m.label,
      done, describe_key((char *)keys + done * ks, ks, k, sizeof k),
      batched ? "" : " one by one");
  if (err) {
    mbr_set_u32(env, err, "count", (uint32_t)done);
    napi_throw(env, err);
  }
  return NULL;
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
      !get_shape(env, fd, "delete entries of", &m) ||
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
    if (r == 0) {
      deleted += count;
      pos = n;
      break;
    }
    e = errno;
    if (e == ENOENT) {
      /* The kernel stops at the first missing key: skip it, go on. */
      deleted += count;
      pos += count + 1;
      e = 0;
      continue;
    }
    /* A kernel without the command leaves count as it was. */
    if (pos == 0 && (count == 0 || count == n) && unsupported(e)) {
      batched = false;
      e = 0;
      for (; pos < n; pos++) {
        if (bpf_map_delete_elem(fd, (char *)keys + pos * ks) == 0)
          deleted++;
        else if (errno != ENOENT) {
          e = errno;
          break;
        }
      }
      break;
    }
    pos += count;
    deleted += count;
    break;
  }
  if (!e)
    return batch_result(env, deleted, batched);
  char k[64];
  napi_value err = mbr_errno_error(
      env, e, "bpf", "delete %zu entries of %s: entry %zu (%s)", n, m.label,
      pos, describe_key((char *)keys + pos * ks, ks, k, sizeof k));
  if (err) {
    mbr_set_u32(env, err, "count", (uint32_t)deleted);
    napi_throw(env, err);
  }
  return NULL;
}

/* mapCreate(type, name, keySize, valueSize, maxEntries,
 *           { flags, innerMapFd, mapExtra, numaNode }) → fd */
static napi_value map_create(napi_env env, napi_callback_info info) {
  MBR_ARGS(env, info, 6, argv, argc);
  uint32_t type, ks, vs, max_entries, flags = 0, numa = 0;
  int32_t inner_fd = -1;
  uint64_t extra = 0;
  char *name = NULL;
  bool has_opts;
  napi_value extra_v;
  bool has_extra = false;
  if (!mbr_arg_u32(env, argv[0], "type", &type))
    return NULL;
  if (!mbr_is_nullish(env, argv[1]) &&
      !(name = mbr_arg_string(env, argv[1], "name")))
    return NULL;
  napi_value opts = NULL;
  if (!mbr_arg_u32(env, argv[2], "keySize", &ks) ||
      !mbr_arg_u32(env, argv[3], "valueSize", &vs) ||
      !mbr_arg_u32(env, argv[4], "maxEntries", &max_entries) ||
      !mbr_arg_options(env, argv[5], "options", &has_opts) ||
      !mbr_opt_u32(env, (opts = has_opts ? argv[5] : NULL), "flags", &flags) ||
      !mbr_opt_i32(env, opts, "innerMapFd", &inner_fd) ||
      !mbr_opt_u32(env, opts, "numaNode", &numa) ||
      !mbr_opt(env, opts, "mapExtra", &extra_v, &has_extra) ||
      (has_extra && !mbr_arg_u64(env, extra_v, "mapExtra", &extra))) {
    free(name);
    return NULL;
  }
  LIBBPF_OPTS(bpf_map_create_opts, co, .map_flags = flags, .map_extra = extra,
              .numa_node = numa);
  if (inner_fd >= 0)
    co.inner_map_fd = (__u32)inner_fd;
  int fd = bpf_map_create(type, name, ks, vs, max_entries, &co);
  if (fd < 0) {
    int e = errno;
    const char *tn = libbpf_bpf_map_type_str(type);
    mbr_throw_errno(env, e, "bpf", "create map %s (type %s, key %u, value %u, "
                                   "max entries %u)",
                    name && *name ? name : "(unnamed)", tn ? tn : "unknown",
                    ks, vs, max_entries);
    free(name);
    return NULL;
  }
  free(name);
  napi_value r;
  NAPI_CALL(env, napi_create_int32(env, fd, &r));
  return r;
}

/* mapInfo(fd) → { type, typeName, id, keySize, valueSize, maxEntries, flags,
 *                 name } */
static napi_value map_info(napi_env env, napi_callback_info info) {
  MBR_ARGS(env, info, 1, argv, argc);
  int32_t fd;
  if (!mbr_arg_i32(env, argv[0], "fd", &fd))
    return NULL;
  struct bpf_map_info mi;
  __u32 len = sizeof mi;
  memset(&mi, 0, sizeof mi);
  if (bpf_obj_get_info_by_fd(fd, &mi, &len) < 0)
    return mbr_throw_errno(env, errno, "bpf", "get info of map fd %d", fd);
  napi_value r;
  NAPI_CALL(env, napi_create_object(env, &r));
  const char *tn = libbpf_bpf_map_type_str(mi.type);
  if (!mbr_set_u32(env, r, "type", mi.type) ||
      !mbr_set_str(env, r, "typeName", tn ? tn : "unknown") ||
      !mbr_set_u32(env, r, "id", mi.id) ||
      !mbr_set_u32(env, r, "keySize", mi.key_size) ||
      !mbr_set_u32(env, r, "valueSize", mi.value_size) ||
      !mbr_set_u32(env, r, "maxEntries", mi.max_entries) ||
      !mbr_set_u32(env, r, "flags", mi.map_flags) ||
      !mbr_set_str(env, r, "name", mi.name))
    return NULL;
  return r;
}

/* progInfo(fd) → { type, typeName, id, name, tag } */
static napi_value prog_info(napi_env env, napi_callback_info info) {
  MBR_ARGS(env, info, 1, argv, argc);
  int32_t fd;
  if (!mbr_arg_i32(env, argv[0], "fd", &fd))
    return NULL;
  struct bpf_prog_info pi;
  __u32 len = sizeof pi;
  memset(&pi, 0, sizeof pi);
  if (bpf_obj_get_info_by_fd(fd, &pi, &len) < 0)
    return mbr_throw_errno(env, errno, "bpf", "get info of program fd %d", fd);
  char tag[BPF_TAG_SIZE * 2 + 1];
  for (int i = 0; i < BPF_TAG_SIZE; i++)
    sprintf(tag + i * 2, "%02x", pi.tag[i]);
  napi_value r;
  NAPI_CALL(env, napi_create_object(env, &r));
  const char *tn = libbpf_bpf_prog_type_str(pi.type);
  if (!mbr_set_u32(env, r, "type", pi.type) ||
      !mbr_set_str(env, r, "typeName", tn ? tn : "unknown") ||
      !mbr_set_u32(env, r, "id", pi.id) ||
      !mbr_set_str(env, r, "name", pi.name) ||
      !mbr_set_str(env, r, "tag", tag))
    return NULL;
  return r;
}

/* objPin(fd, path) */
static napi_value obj_pin(napi_env env, napi_callback_info info) {
  MBR_ARGS(env, info, 2, argv, argc);
  int32_t fd;
  char *path;
  if (!mbr_arg_i32(env, argv[0], "fd", &fd) ||
      !(path = mbr_arg_string(env, argv[1], "path")))
    return NULL;
  int r = bpf_obj_pin(fd, path);
  int e = errno;
  napi_value result = NULL;
  if (r < 0)
    mbr_throw_errno(env, e, "bpf", "pin fd %d at %s", fd, path);
  else
    result = make_undefined(env);
  free(path);
  return result;
}

/* objGet(path, { readOnly, writeOnly }) → fd */
static napi_value obj_get(napi_env env, napi_callback_info info) {
  MBR_ARGS(env, info, 2, argv, argc);
  char *path;
  bool has_opts, ro = false, wo = false;
  if (!(path = mbr_arg_string(env, argv[0], "path")))
    return NULL;
  if (!mbr_arg_options(env, argv[1], "options", &has_opts) ||
      !mbr_opt_bool(env, has_opts ? argv[1] : NULL, "readOnly", &ro) ||
      !mbr_opt_bool(env, has_opts ? argv[1] : NULL, "writeOnly", &wo)) {
    free(path);
    return NULL;
  }
  LIBBPF_OPTS(bpf_obj_get_opts, go,
              .file_flags = (ro ? BPF_F_RDONLY : 0) | (wo ? BPF_F_WRONLY : 0));
  int fd = bpf_obj_get_opts(path, &go);
  int e = errno;
  napi_value result = NULL;
  if (fd < 0)
    mbr_throw_errno(env, e, "bpf", "open pinned object %s", path);
  else if (napi_create_int32(env, fd, &result) != napi_ok)
    close(fd);
  free(path);
  return result;
}

/* closeFd(fd) */
static napi_value close_fd(napi_env env, napi_callback_info info) {
  MBR_ARGS(env, info, 1, argv, argc);
  int32_t fd;
  if (!mbr_arg_i32(env, argv[0], "fd", &fd))
    return NULL;
  if (close(fd) < 0)
    return mbr_throw_errno(env, errno, "close", "close fd %d", fd);
  return make_undefined(env);
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
      {"mapCreate", map_create},
      {"mapInfo", map_info},
      {"progInfo", prog_info},
      {"objPin", obj_pin},
      {"objGet", obj_get},
      {"closeFd", close_fd},
      {NULL, NULL},
  };
  return mbr_define(env, exports, list);
}
