/* BPF objects (ELF files built by clang -target bpf): open, load with pinned
 * maps reused, list programs and maps, close.
 *
 * A handle owns its bpf_object and so the fds of its programs and maps:
 * closeObject() releases them. Dropping the handle without closing leaks the
 * fds on purpose: closing them behind the caller's back would let a later
 * fd with the same number be mistaken for a map the caller still uses. */
#include "common.h"
#include "map-shape.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

typedef struct {
  struct bpf_object *obj;
  char *path;
  bool loaded;
} mbr_object;

static const napi_type_tag OBJECT_TAG = {0x6d62726f626a6563ULL,
                                         0x4d454d4252414e45ULL};

static void object_finalize(napi_env env, void *data, void *hint) {
  mbr_object *o = data;
  /* The bpf_object itself is left open: see the comment at the top. */
  free(o->path);
  free(o);
}

static mbr_object *object_get(napi_env env, napi_value v) {
  mbr_object *o = mbr_handle_get(env, v, &OBJECT_TAG, "BPF object");
  if (o && !o->obj) {
    mbr_throw_code(env, "MEMBRANE_E_CLOSED", "BPF object %s is closed",
                   o->path);
    return NULL;
  }
  return o;
}

/* openObject(path, { pinRoot?, objectName? }) → handle */
static napi_value open_object(napi_env env, napi_callback_info info) {
  MBR_ARGS(env, info, 2, argv, argc);
  bool has_opts;
  char *path = NULL, *pin_root = NULL, *name = NULL;
  napi_value result = NULL;
  if (!(path = mbr_arg_string(env, argv[0], "path")) ||
      !mbr_arg_options(env, argv[1], "options", &has_opts) ||
      !mbr_opt_string(env, has_opts ? argv[1] : NULL, "pinRoot", &pin_root) ||
      !mbr_opt_string(env, has_opts ? argv[1] : NULL, "objectName", &name))
    goto out;

  LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = pin_root,
              .object_name = name);
  mbr_log_reset();
  struct bpf_object *obj = bpf_object__open_file(path, &opts);
  if (!obj) {
    mbr_throw_libbpf(env, errno, "open BPF object %s", path);
    goto out;
  }
  mbr_object *o = calloc(1, sizeof *o);
  if (!o || !(o->path = strdup(path))) {
    free(o);
    bpf_object__close(obj);
    mbr_throw_errno(env, ENOMEM, NULL, "open BPF object %s", path);
    goto out;
  }
  o->obj = obj;
  result = mbr_handle_new(env, &OBJECT_TAG, "BPF object", o, object_finalize);
  if (!result) {
    bpf_object__close(obj);
    free(o->path);
    free(o);
  }
out:
  free(path);
  free(pin_root);
  free(name);
  return result;
}

static struct bpf_map *find_map(napi_env env, mbr_object *o, const char *name,
                                const char *option) {
  struct bpf_map *m = bpf_object__find_map_by_name(o->obj, name);
  if (m)
    return m;
  char names[1024] = "";
  size_t used = 0;
  struct bpf_map *it;
  bpf_object__for_each_map(it, o->obj) {
    int n = snprintf(names + used, sizeof names - used, "%s%s",
                     used ? ", " : "", bpf_map__name(it));
    if (n < 0 || (size_t)n >= sizeof names - used)
      break;
    used += (size_t)n;
  }
  mbr_throw_code(env, "MEMBRANE_E_NO_SUCH_MAP",
                 "load BPF object %s: %s names map \"%s\", which the object "
                 "does not have (it has: %s)",
                 o->path, option, name, names);
  return NULL;
}

/* Applies opts[option] = { mapName: value } with apply(map, value). */
typedef bool (*map_setting_fn)(napi_env env, mbr_object *o, struct bpf_map *m,
                               const char *name, napi_value value);

static bool each_map_setting(napi_env env, mbr_object *o, napi_value opts,
                             const char *option, map_setting_fn apply) {
  napi_value table, keys;
  bool found;
  if (!mbr_opt(env, opts, option, &table, &found))
    return false;
  if (!found)
    return true;
  bool present;
  if (!mbr_arg_options(env, table, option, &present))
    return false;
  NAPI_CHECK(env, napi_get_property_names(env, table, &keys));
  uint32_t n;
  NAPI_CHECK(env, napi_get_array_length(env, keys, &n));
  for (uint32_t i = 0; i < n; i++) {
    napi_value key, value;
    NAPI_CHECK(env, napi_get_element(env, keys, i, &key));
    NAPI_CHECK(env, napi_get_property(env, table, key, &value));
    char *name = mbr_arg_string(env, key, option);
    if (!name)
      return false;
    struct bpf_map *m = find_map(env, o, name, option);
    bool ok = m && apply(env, o, m, name, value);
    free(name);
    if (!ok)
      return false;
  }
  return true;
}

static bool apply_pin_path(napi_env env, mbr_object *o, struct bpf_map *m,
                           const char *name, napi_value value) {
  char *path = mbr_arg_string(env, value, "pinMaps value");
  if (!path)
    return false;
  /* With a pin path, load reuses the map pinned there (when compatible) and
   * pins a newly created one there. */
  int err = bpf_map__set_pin_path(m, path);
  if (err)
    mbr_throw_errno(env, -err, NULL, "set pin path of map %s to %s", name,
                    path);
  free(path);
  return err == 0;
}

static bool apply_reuse_fd(napi_env env, mbr_object *o, struct bpf_map *m,
                           const char *name, napi_value value) {
  int32_t fd;
  if (!mbr_arg_i32(env, value, "reuseMaps value", &fd))
    return false;
  int err = bpf_map__reuse_fd(m, fd);
  if (err)
    mbr_throw_errno(env, -err, "bpf", "reuse fd %d for map %s", fd, name);
  return err == 0;
}

static bool apply_max_entries(napi_env env, mbr_object *o, struct bpf_map *m,
                              const char *name, napi_value value) {
  uint32_t n;
  if (!mbr_arg_u32(env, value, "maxEntries value", &n))
    return false;
  int err = bpf_map__set_max_entries(m, n);
  if (err)
    mbr_throw_errno(env, -err, NULL, "set max entries of map %s to %u", name,
                    n);
  return err == 0;
}

/* loadObject(handle, { pinMaps?: {name: path}, reuseMaps?: {name: fd},
 *                      maxEntries?: {name: n} }) */
static napi_value load_object(napi_env env, napi_callback_info info) {
  MBR_ARGS(env, info, 2, argv, argc);
  mbr_object *o = object_get(env, argv[0]);
  bool has_opts;
  if (!o || !mbr_arg_options(env, argv[1], "options", &has_opts))
    return NULL;
  if (o->loaded)
    return mbr_throw_code(env, "MEMBRANE_E_ALREADY_LOADED",
                          "load BPF object %s: already loaded", o->path);
  napi_value opts = has_opts ? argv[1] : NULL;
  if (!each_map_setting(env, o, opts, "maxEntries", apply_max_entries) ||
      !each_map_setting(env, o, opts, "reuseMaps", apply_reuse_fd) ||
      !each_map_setting(env, o, opts, "pinMaps", apply_pin_path))
    return NULL;
  mbr_log_reset();
  int err = bpf_object__load(o->obj);
  /* Map fds opened, and on failure closed again. */
  mbr_map_shape_forget_all();
  /* libbpf refuses a second load even after a failed one. */
  o->loaded = true;
  if (err)
    return mbr_throw_libbpf(env, -err, "load BPF object %s", o->path);
  napi_value undef;
  NAPI_CALL(env, napi_get_undefined(env, &undef));
  return undef;
}

/* A new object appended to arr at *i (the caller fills it in); NULL after
 * throwing. */
static napi_value append_object(napi_env env, napi_value arr, uint32_t *i) {
  napi_value e;
  NAPI_CALL(env, napi_create_object(env, &e));
  NAPI_CALL(env, napi_set_element(env, arr, (*i)++, e));
  return e;
}

/* The start of objectPrograms and objectMaps: the handle argument, and the
 * array to list its programs or maps in. */
static napi_value list_of(napi_env env, napi_callback_info info,
                          mbr_object **o) {
  MBR_ARGS(env, info, 1, argv, argc);
  napi_value arr;
  if (!(*o = object_get(env, argv[0])))
    return NULL;
  NAPI_CALL(env, napi_create_array(env, &arr));
  return arr;
}

/* objectPrograms(handle) → [{ name, section, type, typeName, fd }] */
static napi_value object_programs(napi_env env, napi_callback_info info) {
  mbr_object *o;
  napi_value e, arr = list_of(env, info, &o);
  if (!arr)
    return NULL;
  uint32_t i = 0;
  struct bpf_program *p;
  bpf_object__for_each_program(p, o->obj) {
    enum bpf_prog_type type = bpf_program__type(p);
    const char *type_name = libbpf_bpf_prog_type_str(type);
    if (!(e = append_object(env, arr, &i)) ||
        !mbr_set_str(env, e, "name", bpf_program__name(p)) ||
        !mbr_set_str(env, e, "section", bpf_program__section_name(p)) ||
        !mbr_set_u32(env, e, "type", type) ||
        !mbr_set_str(env, e, "typeName", type_name ? type_name : "unknown") ||
        !mbr_set_i32(env, e, "fd", bpf_program__fd(p)))
      return NULL;
  }
  return arr;
}

/* objectMaps(handle) → [{ name, type, typeName, fd, keySize, valueSize,
 *                         maxEntries, flags, pinPath, internal }] */
static napi_value object_maps(napi_env env, napi_callback_info info) {
  mbr_object *o;
  napi_value e, arr = list_of(env, info, &o);
  if (!arr)
    return NULL;
  uint32_t i = 0;
  struct bpf_map *m;
  bpf_object__for_each_map(m, o->obj) {
    enum bpf_map_type type = bpf_map__type(m);
    const char *type_name = libbpf_bpf_map_type_str(type);
    const char *pin = bpf_map__pin_path(m);
    if (!(e = append_object(env, arr, &i)) ||
        !mbr_set_str(env, e, "name", bpf_map__name(m)) ||
        !mbr_set_u32(env, e, "type", type) ||
        !mbr_set_str(env, e, "typeName", type_name ? type_name : "unknown") ||
        !mbr_set_i32(env, e, "fd", bpf_map__fd(m)) ||
        !mbr_set_u32(env, e, "keySize", bpf_map__key_size(m)) ||
        !mbr_set_u32(env, e, "valueSize", bpf_map__value_size(m)) ||
        !mbr_set_u32(env, e, "maxEntries", bpf_map__max_entries(m)) ||
        !mbr_set_u32(env, e, "flags", bpf_map__map_flags(m)) ||
        !(pin ? mbr_set_str(env, e, "pinPath", pin)
              : mbr_set_null(env, e, "pinPath")) ||
        !mbr_set_bool(env, e, "pinned", bpf_map__is_pinned(m)) ||
        !mbr_set_bool(env, e, "internal", bpf_map__is_internal(m)))
      return NULL;
  }
  return arr;
}

/* closeObject(handle): closes every fd of the object; idempotent. */
static napi_value close_object(napi_env env, napi_callback_info info) {
  MBR_ARGS(env, info, 1, argv, argc);
  mbr_object *o = mbr_handle_get(env, argv[0], &OBJECT_TAG, "BPF object");
  if (!o)
    return NULL;
  if (o->obj) {
    bpf_object__close(o->obj);
    o->obj = NULL;
    mbr_map_shape_forget_all();
  }
  napi_value undef;
  NAPI_CALL(env, napi_get_undefined(env, &undef));
  return undef;
}

bool mbr_init_object(napi_env env, napi_value exports) {
  static const mbr_export list[] = {
      {"openObject", open_object},       {"loadObject", load_object},
      {"objectPrograms", object_programs}, {"objectMaps", object_maps},
      {"closeObject", close_object},     {NULL, NULL},
  };
  return mbr_define(env, exports, list);
}
