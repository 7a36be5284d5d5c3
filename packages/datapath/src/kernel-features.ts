/**
 * What the datapath needs from the kernel, how to tell when it is missing,
 * and what to say then: the feature, the Linux version and config options
 * that bring it, and the command or package that fixes it.
 */
import { DatapathError, requireRoot, type NativeSystemError } from './datapath-error.js';
import type { NativeBinding } from './native.js';

export interface KernelFeature {
  kind: 'map' | 'prog';
  /** libbpf's name of the map or program type ("lpm_trie", "sched_cls"). */
  type: string;
  /** What it is, in the words of the message. */
  what: string;
  /** First Linux version with it. */
  since: string;
  /** Kernel config options beyond CONFIG_BPF_SYSCALL. */
  config?: string;
}

/** Every kernel feature the datapath's programs and maps use. */
export const DATAPATH_FEATURES: readonly KernelFeature[] = [
  { kind: 'prog', type: 'sched_cls', what: 'tc BPF programs (BPF_PROG_TYPE_SCHED_CLS)', since: '4.1', config: 'CONFIG_NET_CLS_BPF, CONFIG_NET_SCH_INGRESS' },
  { kind: 'map', type: 'hash', what: 'BPF hash maps', since: '3.19' },
  { kind: 'map', type: 'percpu_array', what: 'per-CPU BPF arrays (metrics)', since: '4.6' },
  { kind: 'map', type: 'lru_hash', what: 'LRU BPF hash maps (conntrack)', since: '4.10' },
  { kind: 'map', type: 'lpm_trie', what: 'LPM trie BPF maps (ipcache)', since: '4.11' },
  { kind: 'map', type: 'hash_of_maps', what: 'hash-of-maps BPF maps (per-endpoint policy)', since: '4.12' },
  { kind: 'map', type: 'ringbuf', what: 'BPF ring buffers (events)', since: '5.8' },
];

/**
 * What the socket load balancer (bpf_sock.c) needs besides: cgroup
 * socket-address programs with every hook it uses (getpeername4 came last,
 * in 5.8) and bpf_set_retval (5.18), which makes a frontend without
 * backends refuse with ECONNREFUSED.
 */
export const SOCKET_LB_FEATURES: readonly KernelFeature[] = [
  {
    kind: 'prog',
    type: 'cgroup_sock_addr',
    what: 'cgroup socket-address BPF programs (connect4, sendmsg4, recvmsg4, getpeername4, with bpf_set_retval)',
    since: '5.18',
    config: 'CONFIG_CGROUP_BPF',
  },
  { kind: 'map', type: 'hash', what: 'BPF hash maps', since: '3.19' },
  { kind: 'map', type: 'lru_hash', what: 'LRU BPF hash maps (reverse NAT of sockets)', since: '4.10' },
];

export function kernelFeatureMessage(f: KernelFeature): string {
  const config = ['CONFIG_BPF_SYSCALL=y', ...(f.config ? [f.config] : [])].join(', ');
  return `kernel lacks ${f.what}: needs Linux ${f.since} or newer built with ${config}; boot such a kernel`;
}

/**
 * The features of `features` this kernel lacks. Probing needs root: without
 * it the kernel refuses every probe and all would look missing.
 */
export function missingKernelFeatures(
  binding: NativeBinding,
  features: readonly KernelFeature[] = DATAPATH_FEATURES,
  euid: number | undefined = process.geteuid?.(),
): KernelFeature[] {
  requireRoot('probe kernel features', euid);
  return features.filter((f) => {
    const table = f.kind === 'map' ? binding.mapTypes : binding.progTypes;
    const id = table[f.type];
    // libbpf older than the feature does not even know its name.
    if (id === undefined) return true;
    return f.kind === 'map' ? !binding.probeMapType(id) : !binding.probeProgType(id);
  });
}

/** Throws MEMBRANE_E_KERNEL_FEATURE naming every missing feature. */
export function requireKernelFeatures(
  binding: NativeBinding,
  features: readonly KernelFeature[] = DATAPATH_FEATURES,
  euid: number | undefined = process.geteuid?.(),
): void {
  const missing = missingKernelFeatures(binding, features, euid);
  if (missing.length === 0) return;
  throw new DatapathError(missing.map(kernelFeatureMessage).join('; '), 'MEMBRANE_E_KERNEL_FEATURE');
}

export interface KernelErrorContext {
  fn: string;
  args?: readonly unknown[];
  /** The raw binding, to probe whether a map type exists. */
  binding?: NativeBinding;
}

function feature(e: NativeSystemError, message: string): DatapathError {
  return new DatapathError(`${message} (${e.message})`, 'MEMBRANE_E_KERNEL_FEATURE', {
    errno: e.errno,
    syscall: e.syscall,
    log: e.log,
    cause: e,
  });
}

/**
 * A missing kernel feature behind a kernel error, when the failed call and
 * its errno say so; undefined when the error means something else.
 */
export function explainKernelError(e: NativeSystemError, ctx: KernelErrorContext): DatapathError | undefined {
  if (e.code === 'ENOSYS') {
    return feature(e, 'kernel has no bpf() system call: boot a kernel built with CONFIG_BPF_SYSCALL=y');
  }
  switch (ctx.fn) {
    case 'tcAttach':
      // The qdisc or classifier kind is unknown when its module is absent
      // (a missing interface is ENODEV).
      if (e.code === 'EOPNOTSUPP' || e.code === 'ENOENT') {
        return feature(
          e,
          'kernel lacks the clsact qdisc or the BPF classifier (CONFIG_NET_SCH_INGRESS, CONFIG_NET_CLS_BPF): run `modprobe sch_ingress cls_bpf`, or boot a kernel built with them',
        );
      }
      return undefined;
    case 'cgroupAttach':
      // A kernel without CONFIG_CGROUP_BPF has no cgroup attach types at all.
      if (e.code === 'EINVAL' && ctx.binding && ctx.binding.progTypes['cgroup_sock_addr'] !== undefined) {
        let supported = true;
        try {
          supported = ctx.binding.probeProgType(ctx.binding.progTypes['cgroup_sock_addr']!);
        } catch {
          return undefined;
        }
        if (!supported) return feature(e, kernelFeatureMessage(SOCKET_LB_FEATURES[0]!));
      }
      return undefined;
    case 'ensureBpffs':
      if (e.code === 'ENODEV') return feature(e, 'kernel lacks the BPF filesystem: boot a kernel built with CONFIG_BPF_SYSCALL=y');
      return undefined;
    case 'mapCreate': {
      if (e.code !== 'EINVAL' && e.code !== 'ENOTSUPP' && e.code !== 'EOPNOTSUPP') return undefined;
      const type = ctx.args?.[0];
      if (typeof type !== 'number' || !ctx.binding) return undefined;
      const name = Object.entries(ctx.binding.mapTypes).find(([, id]) => id === type)?.[0];
      const known = DATAPATH_FEATURES.find((f) => f.kind === 'map' && f.type === name);
      let supported = true;
      try {
        supported = ctx.binding.probeMapType(type);
      } catch {
        return undefined;
      }
      if (supported) return undefined;
      return feature(e, known ? kernelFeatureMessage(known) : `kernel lacks BPF map type ${name ?? type}: boot a newer kernel`);
    }
    case 'progTestRun':
      if (e.code === 'ENOTSUPP' || e.code === 'EOPNOTSUPP') {
        return feature(e, 'kernel lacks BPF_PROG_TEST_RUN for this program type (tc programs: Linux 4.12+, with a context: Linux 5.0+): boot a newer kernel');
      }
      return undefined;
    case 'loadObject': {
      // The verifier names a helper it does not know: "unknown func bpf_ringbuf_reserve#131".
      const helper = /(?:unknown|invalid) func ([\w#]+)/.exec(e.log ?? '');
      if (helper) return feature(e, `kernel lacks the BPF helper ${helper[1]} the program calls: boot a newer kernel`);
      return undefined;
    }
    case 'getOriginalDst':
      if (e.code === 'ENOPROTOOPT') {
        return feature(
          e,
          'SO_ORIGINAL_DST comes from netfilter conntrack, which is not loaded: run `modprobe nf_conntrack` (connections made before it are not tracked); with TPROXY or bpf_sk_assign the original destination is the socket\'s local address instead',
        );
      }
      return undefined;
    default:
      return undefined;
  }
}
