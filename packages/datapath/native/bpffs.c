/* The BPF filesystem where maps are pinned (/sys/fs/bpf). Pins outlive the
 * agent, which is what keeps policy enforced while it restarts; a machine
 * that boots without bpffs mounted gets it mounted here, as Cilium's agent
 * does. */
#include "common.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#include <linux/magic.h>

#define DEFAULT_BPFFS "/sys/fs/bpf"

static char *path_arg(napi_env env, napi_value v) {
  if (mbr_is_nullish(env, v)) {
    char *p = malloc(sizeof DEFAULT_BPFFS);
    if (p)
      memcpy(p, DEFAULT_BPFFS, sizeof DEFAULT_BPFFS);
    else
      mbr_throw_errno(env, ENOMEM, NULL, "bpffs path");
    return p;
  }
  return mbr_arg_string(env, v, "path");
}

/* isBpffs(path = "/sys/fs/bpf") → boolean (false when missing too) */
static napi_value is_bpffs(napi_env env, napi_callback_info info) {
  MBR_ARGS(env, info, 1, argv, argc);
  char *path = path_arg(env, argv[0]);
  if (!path)
    return NULL;
  return mbr_fs_has_magic(env, path, BPF_FS_MAGIC);
}

/* ensureBpffs(path = "/sys/fs/bpf") → { path, mounted }: mounted is true
 * when this call mounted it. */
static napi_value ensure_bpffs(napi_env env, napi_callback_info info) {
  MBR_ARGS(env, info, 1, argv, argc);
  char *path = path_arg(env, argv[0]);
  if (!path)
    return NULL;
  napi_value result = NULL;
  struct statfs st;
  bool mounted = false;
  if (statfs(path, &st) < 0) {
    int e = errno;
    if (e != ENOENT) {
      mbr_throw_errno(env, e, "statfs", "check the filesystem of %s", path);
      goto out;
    }
    if (mkdir(path, 0700) < 0 && errno != EEXIST) {
      mbr_throw_errno(env, errno, "mkdir", "create bpffs mount point %s", path);
      goto out;
    }
  } else if (st.f_type == BPF_FS_MAGIC) {
    goto done;
  }
  if (mount("bpffs", path, "bpf", MS_NOSUID | MS_NODEV | MS_NOEXEC,
            "mode=0700") < 0) {
    mbr_throw_errno(env, errno, "mount", "mount bpffs on %s", path);
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

bool mbr_init_bpffs(napi_env env, napi_value exports) {
  static const mbr_export list[] = {
      {"isBpffs", is_bpffs},
      {"ensureBpffs", ensure_bpffs},
      {NULL, NULL},
  };
  return mbr_define(env, exports, list);
}
