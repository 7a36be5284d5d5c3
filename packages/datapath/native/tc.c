/* tc programs on the clsact qdisc of an interface (libbpf's netlink API).
 *
 * Each call may name a network namespace (a path such as /run/netns/NAME):
 * the call then runs in it, ifindex and interface name included. tc filters
 * are identified by (handle, priority) on one attach point; a program fd
 * is only needed to attach. */
#include "common.h"

#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

typedef struct {
  uint32_t ifindex;
  enum bpf_tc_attach_point point;
  const char *point_name;
  uint32_t handle, priority;
  char *netns;
  char *name; /* how messages call the program */
  char ifname[IF_NAMESIZE + 24];
} tc_args;

static void tc_args_free(tc_args *a) {
  free(a->netns);
  free(a->name);
}

static bool parse_point(napi_env env, napi_value v, tc_args *a) {
  char *s = mbr_arg_string(env, v, "attachPoint");
  if (!s)
    return false;
  bool ok = true;
  if (strcmp(s, "ingress") == 0) {
    a->point = BPF_TC_INGRESS;
    a->point_name = "ingress";
  } else if (strcmp(s, "egress") == 0) {
    a->point = BPF_TC_EGRESS;
    a->point_name = "egress";
  } else {
    mbr_throw_type(env, "attachPoint must be \"ingress\" or \"egress\", got "
                        "\"%s\"", s);
    ok = false;
  }
  free(s);
  return ok;
}

/* (ifindex, attachPoint, options) shared by attach, detach and query. */
static bool parse_common(napi_env env, napi_value ifindex, napi_value point,
                         napi_value opts_v, tc_args *a) {
  bool has_opts;
  memset(a, 0, sizeof *a);
  if (!mbr_arg_u32(env, ifindex, "ifindex", &a->ifindex) ||
      !parse_point(env, point, a) ||
      !mbr_arg_options(env, opts_v, "options", &has_opts))
    return false;
  napi_value opts = has_opts ? opts_v : NULL;
  return mbr_opt_u32(env, opts, "handle", &a->handle) &&
         mbr_opt_u32(env, opts, "priority", &a->priority) &&
         mbr_opt_string(env, opts, "netns", &a->netns) &&
         mbr_opt_string(env, opts, "name", &a->name);
}

/* Call inside the netns: "mbr12 (ifindex 31)". */
static void resolve_ifname(tc_args *a) {
  char name[IF_NAMESIZE];
  if (if_indextoname(a->ifindex, name))
    snprintf(a->ifname, sizeof a->ifname, "%s (ifindex %u)", name, a->ifindex);
  else
    snprintf(a->ifname, sizeof a->ifname, "ifindex %u", a->ifindex);
}

static const char *in_netns(const tc_args *a, char *buf, size_t size) {
  if (a->netns)
    snprintf(buf, size, " in netns %s", a->netns);
  else
    buf[0] = 0;
  return buf;
}

/* tcAttach(ifindex, attachPoint, progFd, { handle, priority, replace, netns,
 *           name }) → { handle, priority, progId }
 * Creates the clsact qdisc when missing. handle/priority 0 let the kernel
 * choose; the chosen ones are returned. Without replace, an existing filter
 * with the same handle and priority is an EEXIST error. */
static napi_value tc_attach(napi_env env, napi_callback_info info) {
  MBR_ARGS(env, info, 4, argv, argc);
  tc_args a = {0};
  int32_t prog_fd;
  bool replace = false;
  napi_value result = NULL;
  if (!mbr_arg_i32(env, argv[2], "progFd", &prog_fd) ||
      !parse_common(env, argv[0], argv[1], argv[3], &a) ||
      !mbr_opt_bool(env, mbr_is_nullish(env, argv[3]) ? NULL : argv[3],
                    "replace", &replace))
    goto out;
  if (!a.name) {
    struct bpf_prog_info pi;
    __u32 len = sizeof pi;
    memset(&pi, 0, sizeof pi);
    char buf[64];
    if (bpf_obj_get_info_by_fd(prog_fd, &pi, &len) == 0 && pi.name[0])
      snprintf(buf, sizeof buf, "%s", pi.name);
    else
      snprintf(buf, sizeof buf, "program fd %d", prog_fd);
    a.name = strdup(buf);
    if (!a.name) {
      mbr_throw_errno(env, ENOMEM, NULL, "tc attach");
      goto out;
    }
  }

  mbr_netns_guard g;
  if (!mbr_netns_enter(env, a.netns, &g))
    goto out;
  resolve_ifname(&a);
  DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = (int)a.ifindex,
                      .attach_point = a.point);
  /* The qdisc is shared by both attach points and by other programs: an
   * existing one is fine. */
  int err = bpf_tc_hook_create(&hook);
  const char *step = " (creating the clsact qdisc)";
  if (err == -EEXIST)
    err = 0;
  DECLARE_LIBBPF_OPTS(bpf_tc_opts, opts, .prog_fd = prog_fd,
                      .handle = a.handle, .priority = a.priority,
                      .flags = replace ? BPF_TC_F_REPLACE : 0);
  if (!err) {
    step = NULL;
    err = bpf_tc_attach(&hook, &opts);
  }
  mbr_netns_leave(&g);

  char ns[300];
  if (err && step) {
    mbr_throw_errno(env, -err, "netlink", "attach %s to %s at tc %s%s%s",
                    a.name, a.ifname, a.point_name,
                    in_netns(&a, ns, sizeof ns), step);
    goto out;
  }
  if (err) {
    mbr_throw_errno(env, -err, "netlink", "attach %s to %s at tc %s%s",
                    a.name, a.ifname, a.point_name,
                    in_netns(&a, ns, sizeof ns));
    goto out;
  }
  napi_value r;
  if (napi_create_object(env, &r) != napi_ok ||
      !mbr_set_u32(env, r, "handle", opts.handle) ||
      !mbr_set_u32(env, r, "priority", opts.priority) ||
      !mbr_set_u32(env, r, "progId", opts.prog_id))
    goto out;
  result = r;
out:
  tc_args_free(&a);
  return result;
}

static bool require_filter_id(napi_env env, const tc_args *a, const char *op) {
  if (a->handle && a->priority)
    return true;
  mbr_throw_type(env, "%s needs options.handle and options.priority (the "
                      "ones tcAttach returned)", op);
  return false;
}

/* tcDetach(ifindex, attachPoint, { handle, priority, netns }) → true, or
 * false when no such filter (or no clsact qdisc) was there. */
static napi_value tc_detach(napi_env env, napi_callback_info info) {
  MBR_ARGS(env, info, 3, argv, argc);
  tc_args a = {0};
  napi_value result = NULL;
  if (!parse_common(env, argv[0], argv[1], argv[2], &a) ||
      !require_filter_id(env, &a, "tcDetach"))
    goto out;
  mbr_netns_guard g;
  if (!mbr_netns_enter(env, a.netns, &g))
    goto out;
  resolve_ifname(&a);
  DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = (int)a.ifindex,
                      .attach_point = a.point);
  DECLARE_LIBBPF_OPTS(bpf_tc_opts, opts, .handle = a.handle,
                      .priority = a.priority);
  int err = bpf_tc_detach(&hook, &opts);
  mbr_netns_leave(&g);
  /* No such filter (ENOENT) and no clsact qdisc at all (EINVAL) both mean
   * nothing was attached, as in tc_query. */
  if (err && err != -ENOENT && err != -EINVAL) {
    char ns[300];
    mbr_throw_errno(env, -err, "netlink",
                    "detach tc %s filter %u:%u from %s%s", a.point_name,
                    a.handle, a.priority, a.ifname,
                    in_netns(&a, ns, sizeof ns));
    goto out;
  }
  napi_get_boolean(env, err == 0, &result);
out:
  tc_args_free(&a);
  return result;
}

/* tcQuery(ifindex, attachPoint, { handle, priority, netns }) →
 *   { handle, priority, progId } | null */
static napi_value tc_query(napi_env env, napi_callback_info info) {
  MBR_ARGS(env, info, 3, argv, argc);
  tc_args a = {0};
  napi_value result = NULL;
  if (!parse_common(env, argv[0], argv[1], argv[2], &a) ||
      !require_filter_id(env, &a, "tcQuery"))
    goto out;
  mbr_netns_guard g;
  if (!mbr_netns_enter(env, a.netns, &g))
    goto out;
  resolve_ifname(&a);
  DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = (int)a.ifindex,
                      .attach_point = a.point);
  DECLARE_LIBBPF_OPTS(bpf_tc_opts, opts, .handle = a.handle,
                      .priority = a.priority);
  int err = bpf_tc_query(&hook, &opts);
  mbr_netns_leave(&g);
  /* No filter, and no clsact qdisc at all (EINVAL), both mean "nothing". */
  if (err == -ENOENT || err == -EINVAL) {
    napi_get_null(env, &result);
    goto out;
  }
  if (err) {
    char ns[300];
    mbr_throw_errno(env, -err, "netlink", "query tc %s filter %u:%u on %s%s",
                    a.point_name, a.handle, a.priority, a.ifname,
                    in_netns(&a, ns, sizeof ns));
    goto out;
  }
  napi_value r;
  if (napi_create_object(env, &r) != napi_ok ||
      !mbr_set_u32(env, r, "handle", opts.handle) ||
      !mbr_set_u32(env, r, "priority", opts.priority) ||
      !mbr_set_u32(env, r, "progId", opts.prog_id))
    goto out;
  result = r;
out:
  tc_args_free(&a);
  return result;
}

/* tcHookDestroy(ifindex, { netns }) → true, or false when the interface had
 * no clsact qdisc. Removes the qdisc and every filter on both points. */
static napi_value tc_hook_destroy(napi_env env, napi_callback_info info) {
  MBR_ARGS(env, info, 2, argv, argc);
  tc_args a = {0};
  memset(&a, 0, sizeof a);
  bool has_opts;
  napi_value result = NULL;
  if (!mbr_arg_u32(env, argv[0], "ifindex", &a.ifindex) ||
      !mbr_arg_options(env, argv[1], "options", &has_opts) ||
      !mbr_opt_string(env, has_opts ? argv[1] : NULL, "netns", &a.netns))
    goto out;
  mbr_netns_guard g;
  if (!mbr_netns_enter(env, a.netns, &g))
    goto out;
  resolve_ifname(&a);
  DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = (int)a.ifindex,
                      .attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS);
  int err = bpf_tc_hook_destroy(&hook);
  mbr_netns_leave(&g);
  if (err && err != -ENOENT && err != -EINVAL) {
    char ns[300];
    mbr_throw_errno(env, -err, "netlink", "remove clsact qdisc from %s%s",
                    a.ifname, in_netns(&a, ns, sizeof ns));
    goto out;
  }
  napi_get_boolean(env, err == 0, &result);
out:
  tc_args_free(&a);
  return result;
}

bool mbr_init_tc(napi_env env, napi_value exports) {
  static const mbr_export list[] = {
      {"tcAttach", tc_attach},
      {"tcDetach", tc_detach},
      {"tcQuery", tc_query},
      {"tcHookDestroy", tc_hook_destroy},
      {NULL, NULL},
  };
  return mbr_define(env, exports, list);
}
