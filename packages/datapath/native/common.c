#include <sys/vfs.h>
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/libbpf.h>

/* ---- errors ---- */

const char *mbr_errno_name(int err) {
  /* Kernel-internal codes that leak out of bpf(2); glibc has no names. */
  switch (err) {
  case 524:
    return "ENOTSUPP";
  case 525:
    return "ETOOSMALL";
  }
  const char *name = strerrorname_np(err);
  return name ? name : NULL;
}

static napi_value make_error(napi_env env, mbr_error_kind kind,
                             const char *code, const char *msg) {
  napi_value code_v, msg_v, err = NULL;
  if (napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &code_v) != napi_ok ||
      napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &msg_v) != napi_ok)
    return NULL;
  napi_status s =
      kind == MBR_TYPE_ERROR    ? napi_create_type_error(env, code_v, msg_v, &err)
      : kind == MBR_RANGE_ERROR ? napi_create_range_error(env, code_v, msg_v, &err)
                                : napi_create_error(env, code_v, msg_v, &err);
  return s == napi_ok ? err : NULL;
}

napi_value mbr_throw(napi_env env, napi_value err) {
  if (err)
    napi_throw(env, err);
  return NULL;
}

static napi_value errno_error_v(napi_env env, int err, const char *syscall,
                                const char *detail, const char *fmt,
                                va_list ap) {
  char what[1024], msg[1700], code_buf[32];
  vsnprintf(what, sizeof what, fmt, ap);
  const char *code = mbr_errno_name(err);
  if (!code) {
    snprintf(code_buf, sizeof code_buf, "errno %d", err);
    code = code_buf;
  }
  if (detail)
    snprintf(msg, sizeof msg, "%s: %s (%s)", what, code, detail);
  else
    snprintf(msg, sizeof msg, "%s: %s", what, code);
  napi_value e = make_error(env, MBR_ERROR,
                            strncmp(code, "errno ", 6) ? code : "EUNKNOWN", msg);
  if (!e)
    return NULL;
  mbr_set_i32(env, e, "errno", -err);
  if (syscall)
    mbr_set_str(env, e, "syscall", syscall);
  return e;
}

napi_value mbr_errno_error_detail(napi_env env, int err, const char *syscall,
                                  const char *detail, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  napi_value e = errno_error_v(env, err, syscall, detail, fmt, ap);
  va_end(ap);
  return e;
}

napi_value mbr_throw_libbpf(napi_env env, int err, const char *fmt, ...) {
  char summary[512];
  const char *detail = mbr_log_summary(summary, sizeof summary);
  va_list ap;
  va_start(ap, fmt);
  napi_value e = errno_error_v(env, err, "bpf", detail, fmt, ap);
  va_end(ap);
  mbr_attach_log(env, e);
  return mbr_throw(env, e);
}

napi_value mbr_throw_error(napi_env env, mbr_error_kind kind, const char *code,
                           const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return mbr_throw(env, make_error(env, kind, code, msg));
}

void mbr_throw_napi(napi_env env, napi_status status, const char *call) {
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (pending)
    return;
  const napi_extended_error_info *info = NULL;
  napi_get_last_error_info(env, &info);
  char msg[512];
  snprintf(msg, sizeof msg, "membrane_bpf: %s failed: %s", call,
           info && info->error_message ? info->error_message : "N-API error");
  (void)status;
  napi_throw_error(env, "MEMBRANE_E_NAPI", msg);
}

/* ---- arguments ---- */

bool mbr_is_nullish(napi_env env, napi_value v) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok)
    return true;
  return t == napi_undefined || t == napi_null;
}

static bool arg_number(napi_env env, napi_value v, const char *name,
                       double min, double max, double *out) {
  napi_valuetype t;
  NAPI_CHECK(env, napi_typeof(env, v, &t));
  if (t != napi_number) {
    mbr_throw_type(env, "%s must be a number", name);
    return false;
  }
  double d;
  NAPI_CHECK(env, napi_get_value_double(env, v, &d));
  if (!isfinite(d) || floor(d) != d || d < min || d > max) {
    mbr_throw_range(env, "%s must be an integer in [%.0f, %.0f], got %g", name,
                    min, max, d);
    return false;
  }
  *out = d;
  return true;
}

bool mbr_arg_i32(napi_env env, napi_value v, const char *name, int32_t *out) {
  double d;
  if (!arg_number(env, v, name, -2147483648.0, 2147483647.0, &d))
    return false;
  *out = (int32_t)d;
  return true;
}

bool mbr_arg_u32(napi_env env, napi_value v, const char *name, uint32_t *out) {
  double d;
  if (!arg_number(env, v, name, 0, 4294967295.0, &d))
    return false;
  *out = (uint32_t)d;
  return true;
}

bool mbr_arg_u64(napi_env env, napi_value v, const char *name, uint64_t *out) {
  napi_valuetype t;
  NAPI_CHECK(env, napi_typeof(env, v, &t));
  if (t == napi_bigint) {
    bool lossless;
    NAPI_CHECK(env, napi_get_value_bigint_uint64(env, v, out, &lossless));
    if (!lossless) {
      mbr_throw_range(env, "%s must fit in 64 bits", name);
      return false;
    }
    return true;
  }
  double d;
  if (!arg_number(env, v, name, 0, 9007199254740991.0, &d))
    return false;
  *out = (uint64_t)d;
  return true;
}

bool mbr_arg_bool(napi_env env, napi_value v, const char *name, bool *out) {
  napi_valuetype t;
  NAPI_CHECK(env, napi_typeof(env, v, &t));
  if (t != napi_boolean) {
    mbr_throw_type(env, "%s must be a boolean", name);
    return false;
  }
  NAPI_CHECK(env, napi_get_value_bool(env, v, out));
  return true;
}

bool mbr_arg_bytes(napi_env env, napi_value v, const char *name, void **data,
                   size_t *len) {
  bool is_typed = false;
  NAPI_CHECK(env, napi_is_typedarray(env, v, &is_typed));
  if (is_typed) {
    napi_typedarray_type type;
    size_t length, offset;
    napi_value ab;
    NAPI_CHECK(env, napi_get_typedarray_info(env, v, &type, &length, data, &ab,
                                             &offset));
    if (type == napi_uint8_array) {
      *len = length;
      return true;
    }
  }
  mbr_throw_type(env, "%s must be a Buffer or Uint8Array", name);
  return false;
}

char *mbr_arg_string(napi_env env, napi_value v, const char *name) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_string) {
    mbr_throw_type(env, "%s must be a string", name);
    return NULL;
  }
  size_t len;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) {
    mbr_throw_napi(env, napi_generic_failure, "napi_get_value_string_utf8");
    return NULL;
  }
  char *s = malloc(len + 1);
  if (!s) {
    mbr_throw_errno(env, ENOMEM, NULL, "copy %s", name);
    return NULL;
  }
  napi_get_value_string_utf8(env, v, s, len + 1, &len);
  if (strlen(s) != len) {
    free(s);
    mbr_throw_type(env, "%s must not contain NUL characters", name);
    return NULL;
  }
  return s;
}

bool mbr_arg_function(napi_env env, napi_value v, const char *name) {
  napi_valuetype t;
  NAPI_CHECK(env, napi_typeof(env, v, &t));
  if (t != napi_function) {
    mbr_throw_type(env, "%s must be a function", name);
    return false;
  }
  return true;
}

bool mbr_arg_options(napi_env env, napi_value v, const char *name,
                     bool *present) {
  napi_valuetype t;
  NAPI_CHECK(env, napi_typeof(env, v, &t));
  if (t == napi_undefined || t == napi_null) {
    *present = false;
    return true;
  }
  if (t != napi_object) {
    mbr_throw_type(env, "%s must be an object", name);
    return false;
  }
  *present = true;
  return true;
}

bool mbr_opt(napi_env env, napi_value opts, const char *key, napi_value *out,
             bool *found) {
  *found = false;
  if (!opts)
    return true;
  NAPI_CHECK(env, napi_get_named_property(env, opts, key, out));
  *found = !mbr_is_nullish(env, *out);
  return true;
}

bool mbr_opt_u32(napi_env env, napi_value opts, const char *key,
                 uint32_t *out) {
  napi_value v;
  bool found;
  if (!mbr_opt(env, opts, key, &v, &found))
    return false;
  return found ? mbr_arg_u32(env, v, key, out) : true;
}

bool mbr_opt_i32(napi_env env, napi_value opts, const char *key, int32_t *out) {
  napi_value v;
  bool found;
  if (!mbr_opt(env, opts, key, &v, &found))
    return false;
  return found ? mbr_arg_i32(env, v, key, out) : true;
}

bool mbr_opt_bool(napi_env env, napi_value opts, const char *key, bool *out) {
  napi_value v;
  bool found;
  if (!mbr_opt(env, opts, key, &v, &found))
    return false;
  return found ? mbr_arg_bool(env, v, key, out) : true;
}

bool mbr_opt_string(napi_env env, napi_value opts, const char *key,
                    char **out) {
  napi_value v;
  bool found;
  *out = NULL;
  if (!mbr_opt(env, opts, key, &v, &found))
    return false;
  if (!found)
    return true;
  *out = mbr_arg_string(env, v, key);
  return *out != NULL;
}

/* ---- results ---- */

bool mbr_set_u32(napi_env env, napi_value obj, const char *key, uint32_t v) {
  napi_value x;
  NAPI_CHECK(env, napi_create_uint32(env, v, &x));
  NAPI_CHECK(env, napi_set_named_property(env, obj, key, x));
  return true;
}

bool mbr_set_i32(napi_env env, napi_value obj, const char *key, int32_t v) {
  napi_value x;
  NAPI_CHECK(env, napi_create_int32(env, v, &x));
  NAPI_CHECK(env, napi_set_named_property(env, obj, key, x));
  return true;
}

bool mbr_set_f64(napi_env env, napi_value obj, const char *key, double v) {
  napi_value x;
  NAPI_CHECK(env, napi_create_double(env, v, &x));
  NAPI_CHECK(env, napi_set_named_property(env, obj, key, x));
  return true;
}

bool mbr_set_bool(napi_env env, napi_value obj, const char *key, bool v) {
  napi_value x;
  NAPI_CHECK(env, napi_get_boolean(env, v, &x));
  NAPI_CHECK(env, napi_set_named_property(env, obj, key, x));
  return true;
}

bool mbr_set_str(napi_env env, napi_value obj, const char *key, const char *v) {
  napi_value x;
  NAPI_CHECK(env, napi_create_string_utf8(env, v, NAPI_AUTO_LENGTH, &x));
  NAPI_CHECK(env, napi_set_named_property(env, obj, key, x));
  return true;
}

bool mbr_set_null(napi_env env, napi_value obj, const char *key) {
  napi_value x;
  NAPI_CHECK(env, napi_get_null(env, &x));
  NAPI_CHECK(env, napi_set_named_property(env, obj, key, x));
  return true;
}

napi_value mbr_copy_buffer(napi_env env, const void *data, size_t len) {
  napi_value buf;
  void *copy;
  NAPI_CALL(env, napi_create_buffer_copy(env, len, len ? data : "", &copy, &buf));
  return buf;
}

/* ---- handles ---- */

napi_value mbr_handle_new(napi_env env, const napi_type_tag *tag,
                          const char *kind, void *data,
                          napi_finalize finalize) {
  napi_value obj;
  NAPI_CALL(env, napi_create_object(env, &obj));
  if (!mbr_set_str(env, obj, "kind", kind))
    return NULL;
  NAPI_CALL(env, napi_type_tag_object(env, obj, tag));
  NAPI_CALL(env, napi_wrap(env, obj, data, finalize, NULL, NULL));
  return obj;
}

void *mbr_handle_get(napi_env env, napi_value v, const napi_type_tag *tag,
                     const char *kind) {
  napi_valuetype t;
  bool ok = false;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_object ||
      napi_check_object_type_tag(env, v, tag, &ok) != napi_ok || !ok) {
    mbr_throw_type(env, "expected a %s handle", kind);
    return NULL;
  }
  void *data = NULL;
  if (napi_unwrap(env, v, &data) != napi_ok || !data) {
    mbr_throw_code(env, "MEMBRANE_E_CLOSED", "%s handle is closed", kind);
    return NULL;
  }
  return data;
}

/* ---- libbpf log ---- */

/* Verifier logs can be megabytes; the end says why a program was rejected,
 * so the buffer keeps the last LOG_KEEP bytes. */
#define LOG_KEEP (256 * 1024)

static __thread char *log_buf;
static __thread size_t log_len;
static bool log_debug;

static int log_print(enum libbpf_print_level level, const char *fmt,
                     va_list ap) {
  if (log_debug) {
    va_list copy;
    va_copy(copy, ap);
    vfprintf(stderr, fmt, copy);
    va_end(copy);
  }
  if (level == LIBBPF_DEBUG)
    return 0;
  char line[4096];
  int n = vsnprintf(line, sizeof line, fmt, ap);
  if (n <= 0)
    return 0;
  size_t add = (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
  if (!log_buf) {
    log_buf = malloc(LOG_KEEP + 1);
    if (!log_buf)
      return 0;
    log_len = 0;
  }
  if (log_len + add > LOG_KEEP) {
    size_t drop = log_len + add - LOG_KEEP;
    if (drop > log_len)
      drop = log_len;
    memmove(log_buf, log_buf + drop, log_len - drop);
    log_len -= drop;
  }
  memcpy(log_buf + log_len, line, add);
  log_len += add;
  log_buf[log_len] = 0;
  return 0;
}

void mbr_log_install(void) {
  const char *d = getenv("MEMBRANE_LIBBPF_DEBUG");
  log_debug = d && *d && strcmp(d, "0") != 0;
  libbpf_set_print(log_print);
}

void mbr_log_reset(void) {
  log_len = 0;
  if (log_buf)
    log_buf[0] = 0;
}

const char *mbr_log_text(void) { return log_len ? log_buf : NULL; }

/* The verifier's reason: the line before its "processed N insns" tally. */
static bool verifier_reason(const char **line, size_t *len) {
  const char *tally = strstr(log_buf, "\nprocessed ");
  if (!tally)
    return false;
  const char *end = tally;
  const char *start = end;
  while (start > log_buf && start[-1] != '\n')
    start--;
  if (start == end)
    return false;
  *line = start;
  *len = (size_t)(end - start);
  return true;
}

const char *mbr_log_summary(char *buf, size_t size) {
  if (!log_len)
    return NULL;
  /* The first line that names a failure is libbpf's own verdict ("prog 'x':
   * BPF program load failed: Permission denied"); the verifier's log and
   * its reason come after it. */
  const char *p = log_buf, *best = NULL;
  size_t best_len = 0;
  while (*p) {
    const char *nl = strchr(p, '\n');
    size_t len = nl ? (size_t)(nl - p) : strlen(p);
    if (memmem(p, len, "failed", 6) || memmem(p, len, "error", 5) ||
        memmem(p, len, "invalid", 7)) {
      best = p;
      best_len = len;
      break;
    }
    p += len + (nl ? 1 : 0);
  }
  if (!best)
    return NULL;
  const char *reason;
  size_t reason_len;
  if (verifier_reason(&reason, &reason_len))
    snprintf(buf, size, "%.*s; verifier: %.*s", (int)best_len, best,
             (int)reason_len, reason);
  else
    snprintf(buf, size, "%.*s", (int)best_len, best);
  return buf;
}

void mbr_attach_log(napi_env env, napi_value err) {
  const char *text = mbr_log_text();
  if (err && text)
    mbr_set_str(env, err, "log", text);
}

/* ---- netns ---- */

bool mbr_netns_enter(napi_env env, const char *path, mbr_netns_guard *g) {
  g->active = false;
  g->saved_fd = -1;
  if (!path)
    return true;
  int saved = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (saved < 0) {
    mbr_throw_errno(env, errno, "open", "open the current netns");
    return false;
  }
  int target = open(path, O_RDONLY | O_CLOEXEC);
  if (target < 0) {
    int e = errno;
    close(saved);
    mbr_throw_errno(env, e, "open", "open netns %s", path);
    return false;
  }
  if (setns(target, CLONE_NEWNET) < 0) {
    int e = errno;
    close(target);
    close(saved);
    mbr_throw_errno(env, e, "setns", "enter netns %s", path);
    return false;
  }
  close(target);
  g->saved_fd = saved;
  g->active = true;
  return true;
}

void mbr_netns_leave(mbr_netns_guard *g) {
  if (!g->active)
    return;
  /* Staying in the other namespace would silently move every later socket
   * of this process there: not recoverable, so stop. */
  if (setns(g->saved_fd, CLONE_NEWNET) < 0)
    napi_fatal_error("membrane_bpf", NAPI_AUTO_LENGTH,
                     "cannot return to the original network namespace",
                     NAPI_AUTO_LENGTH);
  close(g->saved_fd);
  g->active = false;
}

/* ---- modules ---- */

bool mbr_define(napi_env env, napi_value exports, const mbr_export *list) {
  for (const mbr_export *e = list; e->name; e++) {
    napi_value fn;
    NAPI_CHECK(env, napi_create_function(env, e->name, NAPI_AUTO_LENGTH, e->fn,
                                         NULL, &fn));
    NAPI_CHECK(env, napi_set_named_property(env, exports, e->name, fn));
  }
  return true;
}

napi_value mbr_fs_has_magic(napi_env env, char *path, long magic) {
  struct statfs st;
  bool yes = false;
  napi_value result = NULL;
  if (statfs(path, &st) == 0)
    yes = st.f_type == magic;
  else if (errno != ENOENT && errno != ENOTDIR) {
    mbr_throw_errno(env, errno, "statfs", "check the filesystem of %s", path);
    goto out;
  }
  napi_get_boolean(env, yes, &result);
out:
  free(path);
  return result;
}
