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
  char *netns;
  char *name; /* how messages call the program */
  char ifname[IF_NAMESIZE + 24];
  /* The filter: handle and priority from the options (and the program and
   * flags of an attach); the kernel fills in what it chose. */
  struct bpf_tc_opts opts;
  const char *step; /* the step of an attach that failed, for the message */
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

/* (ifindex, attachPoint, options) of attach, detach and query, and the
 * filter's opts from them; *opts is the options object or NULL. */
static bool parse_filter(napi_env env, napi_value ifindex, napi_value point,
                         napi_value opts_v, tc_args *a, napi_value *opts) {
  bool has_opts;
  uint32_t handle = 0, priority = 0;
  if (!mbr_arg_u32(env, ifindex, "ifindex", &a->ifindex) ||
      !parse_point(env, point, a) ||
      !mbr_arg_options(env, opts_v, "options", &has_opts))
    return false;
  *opts = has_opts ? opts_v : NULL;
  if (!mbr_opt_u32(env, *opts, "handle", &handle) ||
      !mbr_opt_u32(env, *opts, "priority", &priority) ||
      !mbr_opt_string(env, *opts, "netns", &a->netns) ||
      !mbr_opt_string(env, *opts, "name", &a->name))
    return false;
  a->opts.sz = sizeof a->opts;
  a->opts.handle = handle;
  a->opts.priority = priority;
  return true;
}

/* Detach and query name a filter attached before: handle and priority both. */
static bool require_filter_id(napi_env env, const tc_args *a, const char *op) {
  if (a->opts.handle && a->opts.priority)
    return true;
  mbr_throw_type(env, "%s needs options.handle and options.priority (the "
                      "ones tcAttach returned)", op);
  return false;
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

/* A tc call made inside the netns; 0 or -errno. */
typedef int (*tc_call)(struct bpf_tc_hook *hook, tc_args *a);

/* Runs call on a's interface and attach point inside a->netns (this
 * thread's own when NULL), naming the interface there first, and comes
 * back. *err is call's result; false after throwing when the netns cannot
 * be entered. */
static bool tc_run(napi_env env, tc_args *a, tc_call call, int *err) {
  mbr_netns_guard g;
  if (!mbr_netns_enter(env, a->netns, &g))
    return false;
  resolve_ifname(a);
  DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = (int)a->ifindex,
                      .attach_point = a->point);
  *err = call(&hook, a);
  mbr_netns_leave(&g);
  return true;
}

/* { handle, priority, progId } of the filter in a->opts. */
static napi_value filter_result(napi_env env, const tc_args *a) {
  napi_value r;
  if (napi_create_object(env, &r) != napi_ok ||
      !mbr_set_u32(env, r, "handle", a->opts.handle) ||
      !mbr_set_u32(env, r, "priority", a->opts.priority) ||
      !mbr_set_u32(env, r, "progId", a->opts.prog_id))
    return NULL;
  return r;
}

static int call_attach(struct bpf_tc_hook *hook, tc_args *a) {
  /* The qdisc is shared by both attach points and by other programs: an
   * existing one is fine. */
  int err = bpf_tc_hook_create(hook);
  if (err && err != -EEXIST) {
    a->step = " (creating the clsact qdisc)";
    return err;
  }
  return bpf_tc_attach(hook, &a->opts);
}

static int call_detach(struct bpf_tc_hook *hook, tc_args *a) {
  return bpf_tc_detach(hook, &a->opts);
}

static int call_query(struct bpf_tc_hook *hook, tc_args *a) {
  return bpf_tc_query(hook, &a->opts);
}

static int call_hook_destroy(struct bpf_tc_hook *hook, tc_args *a) {
  return bpf_tc_hook_destroy(hook);
}

/* How messages name a program the caller did not name: its kernel name. */
static bool default_name(napi_env env, int prog_fd, tc_args *a) {
  if (a->name)
    return true;
  struct bpf_prog_info pi;
  __u32 len = sizeof pi;
  memset(&pi, 0, sizeof pi);
  char buf[64];
  if (bpf_obj_get_info_by_fd(prog_fd, &pi, &len) == 0 && pi.name[0])
    snprintf(buf, sizeof buf, "%s", pi.name);
  else
    snprintf(buf, sizeof buf, "program fd %d", prog_fd);
  if ((a->name = strdup(buf)))
    return true;
  mbr_throw_errno(env, ENOMEM, NULL, "tc attach");
  return false;
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
  napi_value opts, result = NULL;
  int err;
  if (!mbr_arg_i32(env, argv[2], "progFd", &prog_fd) ||
      !parse_filter(env, argv[0], argv[1], argv[3], &a, &opts) ||
      !mbr_opt_bool(env, opts, "replace", &replace) ||
      !default_name(env, prog_fd, &a))
    goto out;
  a.opts.prog_fd = prog_fd;
  a.opts.flags = replace ? BPF_TC_F_REPLACE : 0;
  a.step = "";
  if (!tc_run(env, &a, call_attach, &err))
    goto out;
  if (err) {
    char ns[300];
    mbr_throw_errno(env, -err, "netlink", "attach %s to %s at tc %s%s%s",
                    a.name, a.ifname, a.point_name,
                    in_netns(&a, ns, sizeof ns), a.step);
    goto out;
  }
  result = filter_result(env, &a);
out:
  tc_args_free(&a);
  return result;
}

/* What tcDetach and tcQuery do to a filter. */
typedef struct {
  const char *fn, *verb, *prep;
  tc_call call;
} filter_op;

static const filter_op DETACH = {"tcDetach", "detach", "from", call_detach};
static const filter_op QUERY = {"tcQuery", "query", "on", call_query};

/* (ifindex, attachPoint, { handle, priority, netns }) name a filter attached
 * before; op->call runs on it inside the netns. No such filter (ENOENT) and
 * no clsact qdisc at all (EINVAL) both mean nothing was attached: *found is
 * false. False after throwing. */
static bool on_filter(napi_env env, napi_value *argv, const filter_op *op,
                      tc_args *a, bool *found) {
  napi_value opts;
  int err;
  if (!parse_filter(env, argv[0], argv[1], argv[2], a, &opts) ||
      !require_filter_id(env, a, op->fn) || !tc_run(env, a, op->call, &err))
    return false;
  *found = err == 0;
  if (!err || err == -ENOENT || err == -EINVAL)
    return true;
  char ns[300];
  mbr_throw_errno(env, -err, "netlink", "%s tc %s filter %u:%u %s %s%s",
                  op->verb, a->point_name, a->opts.handle, a->opts.priority,
                  op->prep, a->ifname, in_netns(a, ns, sizeof ns));
  return false;
}

/* tcDetach(ifindex, attachPoint, { handle, priority, netns }) → true, or
 * false when no such filter (or no clsact qdisc) was there. */
static napi_value tc_detach(napi_env env, napi_callback_info info) {
  MBR_ARGS(env, info, 3, argv, argc);
  tc_args a = {0};
  bool found;
  napi_value result = NULL;
  if (on_filter(env, argv, &DETACH, &a, &found))
    napi_get_boolean(env, found, &result);
  tc_args_free(&a);
  return result;
}

/* tcQuery(ifindex, attachPoint, { handle, priority, netns }) →
 *   { handle, priority, progId } | null */
static napi_value tc_query(napi_env env, napi_callback_info info) {
  MBR_ARGS(env, info, 3, argv, argc);
  tc_args a = {0};
  bool found;
  napi_value result = NULL;
  if (on_filter(env, argv, &QUERY, &a, &found)) {
    if (found)
      result = filter_result(env, &a);
    else
      napi_get_null(env, &result);
  }
  tc_args_free(&a);
  return result;
}

/* tcHookDestroy(ifindex, { netns }) → true, or false when the interface had
 * no clsact qdisc. Removes the qdisc and every filter on both points. */
static napi_value tc_hook_destroy(napi_env env, napi_callback_info info) {
  MBR_ARGS(env, info, 2, argv, argc);
  tc_args a = {.point = BPF_TC_INGRESS | BPF_TC_EGRESS};
  bool has_opts;
  napi_value result = NULL;
  int err;
  if (!mbr_arg_u32(env, argv[0], "ifindex", &a.ifindex) ||
      !mbr_arg_options(env, argv[1], "options", &has_opts) ||
      !mbr_opt_string(env, has_opts ? argv[1] : NULL, "netns", &a.netns) ||
      !tc_run(env, &a, call_hook_destroy, &err))
    goto out;
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
