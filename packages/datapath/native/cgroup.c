/* cgroup programs (the socket load balancer's cgroup/connect4 and kin):
 * attach, detach and query on a cgroup v2 directory, and the cgroup v2
 * filesystem itself.
 *
 * Programs are attached with BPF_F_ALLOW_MULTI: several agents (and anyone
 * else) may have programs on the same cgroup, each detached by its own
 * program fd, so detaching ours never takes another's. Attachments are the
 * kernel's, not this process's: they stay after it exits, until detached. */
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <linux/magic.h>

/* An attach type's name for messages ("cgroup_inet4_connect"). */
static const char *attach_name(uint32_t type, char *buf, size_t size) {
  const char *n = libbpf_bpf_attach_type_str((enum bpf_attach_type)type);
  if (n)
    return n;
  snprintf(buf, size, "attach type %u", type);
  return buf;
}

/* "program sock4_connect (id 42)", or "program fd 9" when the kernel says
 * nothing about it. */
static const char *prog_name(int fd, char *buf, size_t size) {
  struct bpf_prog_info pi;
  __u32 len = sizeof pi;
  memset(&pi, 0, sizeof pi);
  if (bpf_obj_get_info_by_fd(fd, &pi, &len) == 0)
    snprintf(buf, size, "program %s (id %u)", pi.name[0] ? pi.name : "?",
             pi.id);
  else
    snprintf(buf, size, "program fd %d", fd);
  return buf;
}

/* The cgroup directory opened for bpf(2); -1 after throwing. what says
 * which operation wanted it. */
static int open_cgroup(napi_env env, const char *path, const char *what) {
  int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    mbr_throw_errno(env, errno, "open", "%s: open cgroup %s", what, path);
  return fd;
}

/* The (progFd?, cgroupPath, attachType) arguments; path is malloc'ed. */
typedef struct {
  int32_t prog_fd;
  char *path;
  uint32_t type;
  char type_buf[32];
  const char *type_name;
} cg_args;

static bool parse_args(napi_env env, napi_value *argv, bool with_prog,
                       cg_args *a) {
  size_t i = 0;
  if (with_prog && !mbr_arg_i32(env, argv[i++], "progFd", &a->prog_fd))
    return false;
  if (!(a->path = mbr_arg_string(env, argv[i++], "cgroupPath")))
    return false;
  if (!mbr_arg_u32(env, argv[i], "attachType", &a->type))
    return false;
  a->type_name = attach_name(a->type, a->type_buf, sizeof a->type_buf);
  return true;
}

/* cgroupAttach(progFd, cgroupPath, attachType, flags = BPF_F_ALLOW_MULTI)
 * Adds the program to the cgroup's list for attachType (after those there).
 * Attaching the same program twice is EINVAL (the kernel's answer). */
static napi_value cgroup_attach(napi_env env, napi_callback_info info) {
  MBR_ARGS(env, info, 4, argv, argc);
  cg_args a = {0};
  uint32_t flags = BPF_F_ALLOW_MULTI;
  napi_value result = NULL;
  int cg = -1;
  if (!parse_args(env, argv, true, &a) ||
      (!mbr_is_nullish(env, argv[3]) &&
       !mbr_arg_u32(env, argv[3], "flags", &flags)))
    goto out;
  char name[64];
  prog_name(a.prog_fd, name, sizeof name);
  if ((cg = open_cgroup(env, a.path, "attach")) < 0)
    goto out;
  if (bpf_prog_attach(a.prog_fd, cg, (enum bpf_attach_type)a.type, flags) <
      0) {
    mbr_throw_errno(env, errno, "bpf", "attach %s to cgroup %s at %s (flags %#x)",
                    name, a.path, a.type_name, flags);
    goto out;
  }
  napi_get_undefined(env, &result);
out:
  if (cg >= 0)
    close(cg);
  free(a.path);
  return result;
}

/* cgroupDetach(progFd, cgroupPath, attachType) → true, or false when the
 * program was not attached there (ENOENT). Only that program goes. */
static napi_value cgroup_detach(napi_env env, napi_callback_info info) {
  MBR_ARGS(env, info, 3, argv, argc);
  cg_args a = {0};
  napi_value result = NULL;
  int cg = -1;
  if (!parse_args(env, argv, true, &a))
    goto out;
  char name[64];
  prog_name(a.prog_fd, name, sizeof name);
  if ((cg = open_cgroup(env, a.path, "detach")) < 0)
    goto out;
  bool found = true;
  if (bpf_prog_detach2(a.prog_fd, cg, (enum bpf_attach_type)a.type) < 0) {
    if (errno != ENOENT) {
      mbr_throw_errno(env, errno, "bpf", "detach %s from cgroup %s at %s",
                      name, a.path, a.type_name);
      goto out;
    }
    found = false;
  }
  napi_get_boolean(env, found, &result);
out:
  if (cg >= 0)
    close(cg);
  free(a.path);
  return result;
}

/* cgroupQuery(cgroupPath, attachType, { effective }) → [progId]
 * The programs attached to this cgroup itself, in the order they run; with
 * effective, those that run for its sockets (its ancestors' included). */
static napi_value cgroup_query(napi_env env, napi_callback_info info) {
  MBR_ARGS(env, info, 3, argv, argc);
  cg_args a = {0};
  bool has_opts, effective = false;
  napi_value result = NULL;
  __u32 *ids = NULL;
  int cg = -1;
  if (!parse_args(env, argv, false, &a) ||
      !mbr_arg_options(env, argv[2], "options", &has_opts) ||
      !mbr_opt_bool(env, has_opts ? argv[2] : NULL, "effective", &effective))
    goto out;
  if ((cg = open_cgroup(env, a.path, "query")) < 0)
    goto out;
  __u32 cap = 64, cnt, attach_flags = 0;
  for (;;) {
    free(ids);
    if (!(ids = calloc(cap, sizeof *ids))) {
      mbr_throw_errno(env, ENOMEM, NULL, "query cgroup %s", a.path);
      goto out;
    }
    cnt = cap;
    if (bpf_prog_query(cg, (enum bpf_attach_type)a.type,
                       effective ? BPF_F_QUERY_EFFECTIVE : 0, &attach_flags,
                       ids, &cnt) == 0)
      break;
    /* More programs than room: the kernel said how many (cnt). */
    if (errno == ENOSPC && cnt > cap) {
      cap = cnt;
      continue;
    }
    mbr_throw_errno(env, errno, "bpf", "query the programs of cgroup %s at %s",
                    a.path, a.type_name);
    goto out;
  }
  napi_value arr;
  if (napi_create_array_with_length(env, cnt, &arr) != napi_ok)
    goto out;
  for (__u32 i = 0; i < cnt; i++) {
    napi_value id;
    if (napi_create_uint32(env, ids[i], &id) != napi_ok ||
        napi_set_element(env, arr, i, id) != napi_ok)
      goto out;
  }
  result = arr;
out:
  if (cg >= 0)
    close(cg);
  free(ids);
  free(a.path);
  return result;
}

/* isCgroup2(path) → boolean (false when missing too) */
static napi_value is_cgroup2(napi_env env, napi_callback_info info) {
  MBR_ARGS(env, info, 1, argv, argc);
  char *path = mbr_arg_string(env, argv[0], "path");
  if (!path)
    return NULL;
  return mbr_fs_has_magic(env, path, CGROUP2_SUPER_MAGIC);
}

/* mountCgroup2(path) → { path, mounted }: mounts the cgroup v2 hierarchy on
 * path (created, with its parents' 0755, when missing) unless it is there
 * already (mounted false). Every mount of cgroup2 is the same hierarchy, so
 * programs attached at this mount's root apply to every process. */
static napi_value mount_cgroup2(napi_env env, napi_callback_info info) {
  MBR_ARGS(env, info, 1, argv, argc);
  char *path = mbr_arg_string(env, argv[0], "path");
  if (!path)
    return NULL;
  napi_value result = NULL;
  struct statfs st;
  bool mounted = false;
  if (statfs(path, &st) == 0 && st.f_type == CGROUP2_SUPER_MAGIC)
    goto done;
  /* mkdir -p: /run/membrane may not exist yet. */
  for (char *p = path + 1; *p; p++) {
    if (*p != '/')
      continue;
    *p = 0;
    int r = mkdir(path, 0755), e = errno;
    *p = '/';
    if (r < 0 && e != EEXIST) {
      mbr_throw_errno(env, e, "mkdir", "create the cgroup2 mount point %s",
                      path);
      goto out;
    }
  }
  if (mkdir(path, 0755) < 0 && errno != EEXIST) {
    mbr_throw_errno(env, errno, "mkdir", "create the cgroup2 mount point %s",
                    path);
    goto out;
  }
  if (mount("cgroup2", path, "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC,
            NULL) < 0) {
    mbr_throw_errno(env, errno, "mount", "mount cgroup2 on %s", path);
    goto out;
  }
  mounted = true;
done:;
  napi_value r;
  if (napi_create_object(env, &r) == napi_ok &&
      mbr_set_str(env, r, "path", path) &&
      mbr_set_bool(env, r, "mounted", mounted))
    result = r;
out:
  free(path);
  return result;
}

/* attachTypes: libbpf's names → numbers ("cgroup_inet4_connect" → 10). */
static bool attach_type_table(napi_env env, napi_value exports) {
  napi_value table;
  NAPI_CHECK(env, napi_create_object(env, &table));
  for (unsigned t = 0; t < 256; t++) {
    const char *n = libbpf_bpf_attach_type_str((enum bpf_attach_type)t);
    if (!n)
      break;
    if (!mbr_set_u32(env, table, n, t))
      return false;
  }
  NAPI_CHECK(env, napi_set_named_property(env, exports, "attachTypes", table));
  return true;
}

bool mbr_init_cgroup(napi_env env, napi_value exports) {
  static const mbr_export list[] = {
      {"cgroupAttach", cgroup_attach},
      {"cgroupDetach", cgroup_detach},
      {"cgroupQuery", cgroup_query},
      {"isCgroup2", is_cgroup2},
      {"mountCgroup2", mount_cgroup2},
      {NULL, NULL},
  };
  return mbr_define(env, exports, list) && attach_type_table(env, exports);
}
