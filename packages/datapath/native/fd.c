/* Map and program fds: creation (inner maps of hash-of-maps), info, pins
 * and closing. Every map fd the process holds passes through here or
 * object.c, which is what lets map-shape.c cache each fd's sizes. */
#include "common.h"
#include "map-shape.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

static napi_value make_undefined(napi_env env) {
  napi_value v;
  napi_get_undefined(env, &v);
  return v;
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
  mbr_map_shape_forget(fd);
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

/* The fd argument of mapInfo and progInfo, and BPF_OBJ_GET_INFO_BY_FD on it
 * into *info (zeroed first); throws "get info of <kind> fd N: CODE". */
static bool get_info(napi_env env, napi_value fd_v, const char *kind,
                     void *info, __u32 size) {
  int32_t fd;
  if (!mbr_arg_i32(env, fd_v, "fd", &fd))
    return false;
  memset(info, 0, size);
  if (bpf_obj_get_info_by_fd(fd, info, &size) == 0)
    return true;
  mbr_throw_errno(env, errno, "bpf", "get info of %s fd %d", kind, fd);
  return false;
}

/* The fields every kind of info starts with: { type, typeName, id }. */
static napi_value info_result(napi_env env, __u32 type, const char *type_name,
                              __u32 id) {
  napi_value r;
  NAPI_CALL(env, napi_create_object(env, &r));
  if (!mbr_set_u32(env, r, "type", type) ||
      !mbr_set_str(env, r, "typeName", type_name ? type_name : "unknown") ||
      !mbr_set_u32(env, r, "id", id))
    return NULL;
  return r;
}

/* mapInfo(fd) → { type, typeName, id, keySize, valueSize, maxEntries, flags,
 *                 name } */
static napi_value map_info(napi_env env, napi_callback_info info) {
  MBR_ARGS(env, info, 1, argv, argc);
  struct bpf_map_info mi;
  napi_value r;
  if (!get_info(env, argv[0], "map", &mi, sizeof mi) ||
      !(r = info_result(env, mi.type, libbpf_bpf_map_type_str(mi.type),
                        mi.id)) ||
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
  struct bpf_prog_info pi;
  if (!get_info(env, argv[0], "program", &pi, sizeof pi))
    return NULL;
  char tag[BPF_TAG_SIZE * 2 + 1];
  for (int i = 0; i < BPF_TAG_SIZE; i++)
    sprintf(tag + i * 2, "%02x", pi.tag[i]);
  napi_value r = info_result(env, pi.type, libbpf_bpf_prog_type_str(pi.type),
                             pi.id);
  if (!r || !mbr_set_str(env, r, "name", pi.name) ||
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
  mbr_map_shape_forget(fd);
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
  int r = close(fd), e = errno;
  mbr_map_shape_forget(fd);
  if (r < 0)
    return mbr_throw_errno(env, e, "close", "close fd %d", fd);
  return make_undefined(env);
}

bool mbr_init_fd(napi_env env, napi_value exports) {
  static const mbr_export list[] = {
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
