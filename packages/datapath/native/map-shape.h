/* What an operation needs to know about a map: the kernel reads exactly
 * key_size and value_size bytes from the pointers it is given (and writes
 * value_size bytes to a lookup's), so every Buffer is checked against them
 * before the call; a short Buffer would otherwise let the kernel read or
 * write past it.
 *
 * A map's type and sizes never change, so each fd's shape is asked of the
 * kernel (BPF_OBJ_GET_INFO_BY_FD) once and kept until the fd number changes
 * hands. That is exact because every map fd of the process comes from this
 * addon: each call that makes fds (mapCreate, objGet, loadObject) or closes
 * them (closeFd, closeObject) forgets what was known of those numbers. */
#ifndef MEMBRANE_NATIVE_MAP_SHAPE_H
#define MEMBRANE_NATIVE_MAP_SHAPE_H

#include "common.h"

#include <linux/types.h>

typedef struct {
  __u32 type, key_size, max_entries;
  /* Per-CPU maps: round_up(value_size, 8) per possible CPU. */
  __u32 value_size;
  char label[64]; /* "map mbr_policy (fd 7)" */
} map_shape;

/* Fills *m (from the cache, else from the kernel); throws "<what> map fd N:
 * CODE" when the kernel does not know the fd as a map. */
bool mbr_map_shape(napi_env env, int fd, const char *what, map_shape *m);
/* The fd number now names something else, or nothing. */
void mbr_map_shape_forget(int fd);
/* After a call that may have opened or closed any number of fds. */
void mbr_map_shape_forget_all(void);

#endif
