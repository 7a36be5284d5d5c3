/* The per-fd cache of map shapes (see map-shape.h). */
#include "map-shape.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

/* Fds past this are looked up every time rather than cached. */
#define SHAPES_MAX 65536

typedef struct {
  bool known;
  map_shape m;
} shape_slot;

/* Indexed by fd. fds are per process and each worker thread has its own JS
 * thread, hence the lock. */
static shape_slot *slots;
static size_t slots_len;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static bool is_percpu(__u32 type) {
  return type == BPF_MAP_TYPE_PERCPU_HASH || type == BPF_MAP_TYPE_PERCPU_ARRAY ||
         type == BPF_MAP_TYPE_LRU_PERCPU_HASH ||
         type == BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE;
}

/* 0, or the errno of BPF_OBJ_GET_INFO_BY_FD. */
static int from_kernel(int fd, map_shape *m) {
  struct bpf_map_info info;
  __u32 len = sizeof info;
  memset(&info, 0, sizeof info);
  if (bpf_obj_get_info_by_fd(fd, &info, &len) < 0)
    return errno;
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
  return 0;
}

static void remember(int fd, const map_shape *m) {
  if (fd < 0 || fd >= SHAPES_MAX)
    return;
  if ((size_t)fd >= slots_len) {
    size_t len = slots_len ? slots_len : 64;
    while (len <= (size_t)fd)
      len *= 2;
    shape_slot *grown = realloc(slots, len * sizeof *grown);
    if (!grown)
      return; /* not cached: asked again next time */
    memset(grown + slots_len, 0, (len - slots_len) * sizeof *grown);
    slots = grown;
    slots_len = len;
  }
  slots[fd].m = *m;
  slots[fd].known = true;
}

bool mbr_map_shape(napi_env env, int fd, const char *what, map_shape *m) {
  int err = 0;
  /* Asked and remembered under the lock: a forget that follows a close
   * cannot be overtaken by a shape read before it. */
  pthread_mutex_lock(&lock);
  if (fd >= 0 && (size_t)fd < slots_len && slots[fd].known)
    *m = slots[fd].m;
  else if (!(err = from_kernel(fd, m)))
    remember(fd, m);
  pthread_mutex_unlock(&lock);
  if (err)
    mbr_throw_errno(env, err, "bpf", "%s map fd %d", what, fd);
  return !err;
}

void mbr_map_shape_forget(int fd) {
  pthread_mutex_lock(&lock);
  if (fd >= 0 && (size_t)fd < slots_len)
    slots[fd].known = false;
  pthread_mutex_unlock(&lock);
}

void mbr_map_shape_forget_all(void) {
  pthread_mutex_lock(&lock);
  if (slots)
    memset(slots, 0, slots_len * sizeof *slots);
  pthread_mutex_unlock(&lock);
}
