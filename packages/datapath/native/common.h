/* Shared helpers of the membrane_bpf addon: argument checks, errors that keep
 * errno and say what was being done, handles, and the capture of libbpf's log.
 *
 * Every exported function runs on the JS thread. A helper that returns false
 * or NULL has already thrown a JS exception; the caller returns NULL at once.
 */
#ifndef MEMBRANE_NATIVE_COMMON_H
#define MEMBRANE_NATIVE_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <node_api.h>

/* Fails the current call when an N-API call fails (an exception is pending
 * afterwards, either the one the call raised or one describing the status). */
#define NAPI_CALL(env, call)                                                   \
  do {                                                                         \
    napi_status status_ = (call);                                              \
    if (status_ != napi_ok) {                                                  \
      mbr_throw_napi((env), status_, #call);                                   \
      return NULL;                                                             \
    }                                                                          \
  } while (0)

/* Like NAPI_CALL for helpers that return bool. */
#define NAPI_CHECK(env, call)                                                  \
  do {                                                                         \
    napi_status status_ = (call);                                              \
    if (status_ != napi_ok) {                                                  \
      mbr_throw_napi((env), status_, #call);                                   \
      return false;                                                            \
    }                                                                          \
  } while (0)

#define MBR_ARGS(env, info, n, argv, argc)                                     \
  size_t argc = (n);                                                           \
  napi_value argv[(n) > 0 ? (n) : 1];                                          \
  NAPI_CALL(env, napi_get_cb_info((env), (info), &argc, argv, NULL, NULL));    \
  for (size_t i_ = argc; i_ < (n); i_++)                                       \
    NAPI_CALL(env, napi_get_undefined((env), &argv[i_]))

/* ---- errors ---- */

/* errno's symbolic name ("EEXIST"); the kernel-internal 524 is "ENOTSUPP". */
const char *mbr_errno_name(int err);

/* Builds `<what>: <CODE>`, or `<what>: <CODE> (detail)` when detail is set,
 * with err.code = CODE, err.errno = -err (Node's convention for system
 * errors) and err.syscall = syscall when given. Every system error of the
 * addon is formatted here. */
napi_value mbr_errno_error_detail(napi_env env, int err, const char *syscall,
                                  const char *detail, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
#define mbr_errno_error(env, err, syscall, ...)                                \
  mbr_errno_error_detail((env), (err), (syscall), NULL, __VA_ARGS__)
/* Throws err when it is set (building it may have failed); returns NULL, so
 * that a callback can `return mbr_throw(env, e)`. */
napi_value mbr_throw(napi_env env, napi_value err);
#define mbr_throw_errno(env, ...) mbr_throw((env), mbr_errno_error((env), __VA_ARGS__))
/* A failed libbpf call: mbr_throw_errno with syscall "bpf", libbpf's failure
 * line (mbr_log_summary) as the detail and err.log = its captured log. */
napi_value mbr_throw_libbpf(napi_env env, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

typedef enum { MBR_ERROR, MBR_TYPE_ERROR, MBR_RANGE_ERROR } mbr_error_kind;
/* Throws an Error, TypeError or RangeError with err.code = code; NULL. */
napi_value mbr_throw_error(napi_env env, mbr_error_kind kind, const char *code,
                           const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Argument errors, coded as Node codes its own. */
#define mbr_throw_type(env, ...)                                               \
  mbr_throw_error((env), MBR_TYPE_ERROR, "ERR_INVALID_ARG_TYPE", __VA_ARGS__)
#define mbr_throw_range(env, ...)                                              \
  mbr_throw_error((env), MBR_RANGE_ERROR, "ERR_OUT_OF_RANGE", __VA_ARGS__)
/* A plain Error with the given code (e.g. MEMBRANE_E_CLOSED). */
#define mbr_throw_code(env, code, ...)                                         \
  mbr_throw_error((env), MBR_ERROR, (code), __VA_ARGS__)
void mbr_throw_napi(napi_env env, napi_status status, const char *call);

/* ---- arguments ---- */

bool mbr_is_nullish(napi_env env, napi_value v);
bool mbr_arg_i32(napi_env env, napi_value v, const char *name, int32_t *out);
bool mbr_arg_u32(napi_env env, napi_value v, const char *name, uint32_t *out);
bool mbr_arg_u64(napi_env env, napi_value v, const char *name, uint64_t *out);
bool mbr_arg_bool(napi_env env, napi_value v, const char *name, bool *out);
/* A Buffer or any Uint8Array; data points into JS memory, valid during the call. */
bool mbr_arg_bytes(napi_env env, napi_value v, const char *name, void **data,
                   size_t *len);
/* A string copied to malloc'ed memory (free it); NULL after throwing. */
char *mbr_arg_string(napi_env env, napi_value v, const char *name);
bool mbr_arg_function(napi_env env, napi_value v, const char *name);
/* An options object: undefined/null become "no options" (*present = false). */
bool mbr_arg_options(napi_env env, napi_value v, const char *name,
                     bool *present);
/* Reads opts[key]; *found is false when absent, undefined or null. */
bool mbr_opt(napi_env env, napi_value opts, const char *key, napi_value *out,
             bool *found);
bool mbr_opt_u32(napi_env env, napi_value opts, const char *key,
                 uint32_t *out);
bool mbr_opt_i32(napi_env env, napi_value opts, const char *key, int32_t *out);
bool mbr_opt_bool(napi_env env, napi_value opts, const char *key, bool *out);
/* Optional string option: *out is malloc'ed or left NULL when absent. */
bool mbr_opt_string(napi_env env, napi_value opts, const char *key,
                    char **out);

/* ---- results ---- */

bool mbr_set_u32(napi_env env, napi_value obj, const char *key, uint32_t v);
bool mbr_set_i32(napi_env env, napi_value obj, const char *key, int32_t v);
bool mbr_set_f64(napi_env env, napi_value obj, const char *key, double v);
bool mbr_set_bool(napi_env env, napi_value obj, const char *key, bool v);
bool mbr_set_str(napi_env env, napi_value obj, const char *key, const char *v);
bool mbr_set_null(napi_env env, napi_value obj, const char *key);
napi_value mbr_copy_buffer(napi_env env, const void *data, size_t len);

/* ---- handles ---- */

/* An opaque JS object wrapping native state, tagged with its kind so one
 * kind of handle cannot be passed where another is expected. */
napi_value mbr_handle_new(napi_env env, const napi_type_tag *tag,
                          const char *kind, void *data,
                          napi_finalize finalize);
/* The wrapped pointer; NULL after throwing (wrong kind, or already closed
 * when the wrap was removed). */
void *mbr_handle_get(napi_env env, napi_value v, const napi_type_tag *tag,
                     const char *kind);

/* ---- libbpf log ---- */

/* libbpf's warnings and info lines are kept (per thread) instead of being
 * printed, so an error can carry them: err.log. MEMBRANE_LIBBPF_DEBUG=1 also
 * prints everything, debug lines included, to stderr. */
void mbr_log_install(void);
void mbr_log_reset(void);
const char *mbr_log_text(void);
/* The most telling line of the log (one naming a failure), or NULL. */
const char *mbr_log_summary(char *buf, size_t size);
/* Sets err.log to the captured text when there is some. */
void mbr_attach_log(napi_env env, napi_value err);

/* ---- netns ---- */

/* Runs the calling thread inside another network namespace for the span of
 * one synchronous call (tc and interface-name lookups are per netns). */
typedef struct {
  int saved_fd;
  bool active;
} mbr_netns_guard;
/* path NULL: stays in the current netns. */
bool mbr_netns_enter(napi_env env, const char *path, mbr_netns_guard *g);
void mbr_netns_leave(mbr_netns_guard *g);

/* ---- modules ---- */

typedef struct {
  const char *name;
  napi_callback fn;
} mbr_export;
bool mbr_define(napi_env env, napi_value exports, const mbr_export *list);

bool mbr_init_object(napi_env env, napi_value exports);
bool mbr_init_map(napi_env env, napi_value exports);
bool mbr_init_fd(napi_env env, napi_value exports);
bool mbr_init_tc(napi_env env, napi_value exports);
bool mbr_init_ringbuf(napi_env env, napi_value exports);
bool mbr_init_test_run(napi_env env, napi_value exports);
bool mbr_init_sockopt(napi_env env, napi_value exports);
bool mbr_init_proxy_socket(napi_env env, napi_value exports);
bool mbr_init_udp_socket(napi_env env, napi_value exports);
bool mbr_init_bpffs(napi_env env, napi_value exports);
bool mbr_init_cgroup(napi_env env, napi_value exports);

/* true when path is on a filesystem of this magic (false when it is missing); takes path (freed). NULL: thrown. */
napi_value mbr_fs_has_magic(napi_env env, char *path, long magic);

#endif
