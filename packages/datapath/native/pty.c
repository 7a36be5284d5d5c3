/* Pseudo-terminals, which Node cannot open: `kubectl exec -it` runs its
 * command on the slave side of a fresh pty while the agent reads and writes
 * the master (packages/agent/src/kube/kube-exec.ts).
 *
 * Both fds are O_CLOEXEC so no other child of the agent inherits them: the
 * child gets the slave only through its stdio (dup2 clears the flag there),
 * and the master's read ends with EIO once every slave fd is closed, which
 * is how the reader learns the command is done. The master is O_NONBLOCK
 * because libuv reads it on the event loop and because a blocking write to
 * a full pty (a command that does not read its input) would stall the
 * agent; writers retry on EAGAIN. */
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

static bool window_size(napi_env env, napi_value cols_v, napi_value rows_v,
                        struct winsize *ws) {
  uint32_t cols, rows;
  if (!mbr_arg_u32(env, cols_v, "cols", &cols) ||
      !mbr_arg_u32(env, rows_v, "rows", &rows))
    return false;
  /* struct winsize holds unsigned shorts; a larger value would wrap. */
  if (cols > 0xffff || rows > 0xffff) {
    mbr_throw_range(env, "cols and rows must be at most 65535 (got %u x %u)",
                    cols, rows);
    return false;
  }
  *ws = (struct winsize){.ws_col = (unsigned short)cols,
                         .ws_row = (unsigned short)rows};
  return true;
}

/* ptyOpen(cols, rows) → { master, slave, path } */
static napi_value pty_open(napi_env env, napi_callback_info info) {
  MBR_ARGS(env, info, 2, argv, argc);
  struct winsize ws;
  if (!window_size(env, argv[0], argv[1], &ws))
    return NULL;
  /* O_NOCTTY: the agent itself must never acquire the terminal. */
  int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0)
    return mbr_throw_errno(env, errno, "posix_openpt", "open a pty master");
  char path[64];
  int slave = -1;
  const char *step = NULL, *syscall = NULL;
  int err = 0;
  if (grantpt(master) < 0) {
    step = "grant the pty slave", syscall = "grantpt", err = errno;
  } else if (unlockpt(master) < 0) {
    step = "unlock the pty slave", syscall = "unlockpt", err = errno;
  } else if ((err = ptsname_r(master, path, sizeof path)) != 0) {
    step = "name the pty slave", syscall = "ptsname_r";
  } else if ((slave = open(path, O_RDWR | O_NOCTTY | O_CLOEXEC)) < 0) {
    step = "open the pty slave", syscall = "open", err = errno;
  } else if (ioctl(master, TIOCSWINSZ, &ws) < 0) {
    step = "set the pty size", syscall = "ioctl", err = errno;
  } else {
    int fl = fcntl(master, F_GETFL);
    if (fl < 0 || fcntl(master, F_SETFL, fl | O_NONBLOCK) < 0)
      step = "make the pty master nonblocking", syscall = "fcntl", err = errno;
  }
  if (step) {
    if (slave >= 0)
      close(slave);
    close(master);
    return mbr_throw_errno(env, err, syscall, "%s", step);
  }
  napi_value r;
  if (napi_create_object(env, &r) != napi_ok ||
      !mbr_set_i32(env, r, "master", master) ||
      !mbr_set_i32(env, r, "slave", slave) ||
      !mbr_set_str(env, r, "path", path)) {
    close(slave);
    close(master);
    return NULL;
  }
  return r;
}

/* ptyResize(fd, cols, rows): the kernel sends SIGWINCH to the terminal's
 * foreground process group when the size changes. */
static napi_value pty_resize(napi_env env, napi_callback_info info) {
  MBR_ARGS(env, info, 3, argv, argc);
  int32_t fd;
  struct winsize ws;
  if (!mbr_arg_i32(env, argv[0], "fd", &fd) ||
      !window_size(env, argv[1], argv[2], &ws))
    return NULL;
  if (ioctl(fd, TIOCSWINSZ, &ws) < 0)
    return mbr_throw_errno(env, errno, "ioctl", "resize pty fd %d to %u x %u",
                           fd, ws.ws_col, ws.ws_row);
  napi_value v;
  NAPI_CALL(env, napi_get_undefined(env, &v));
  return v;
}

bool mbr_init_pty(napi_env env, napi_value exports) {
  static const mbr_export list[] = {
      {"ptyOpen", pty_open},
      {"ptyResize", pty_resize},
      {NULL, NULL},
  };
  return mbr_define(env, exports, list);
}
