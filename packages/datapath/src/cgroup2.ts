/**
 * Where the socket load balancer attaches: the root of the cgroup v2
 * hierarchy, so its programs run for every process of the machine (a
 * program attached with BPF_F_ALLOW_MULTI at a cgroup runs for the sockets
 * of every cgroup below it). There is one cgroup v2 hierarchy however many
 * times it is mounted: on a hybrid machine it is at /sys/fs/cgroup/unified,
 * on a unified one at /sys/fs/cgroup. When none is mounted, Membrane mounts
 * it at MEMBRANE_CGROUP2_MOUNT (and says so), as Cilium mounts its own at
 * /run/cilium/cgroupv2.
 */
import { readFileSync } from 'node:fs';
import { MembraneError } from '@membrane/api';
import type { NativeBinding } from './native.js';

export const MEMBRANE_CGROUP2_MOUNT = '/run/membrane/cgroup2';

/** The cgroup v2 mount points listed in /proc/mounts text, in its order. */
export function cgroup2Mounts(procMounts: string): string[] {
  const out: string[] = [];
  for (const line of procMounts.split('\n')) {
    const f = line.split(' ');
    if (f[2] !== 'cgroup2' || !f[1]) continue;
    // The kernel escapes space, tab, newline and backslash as \ooo.
    out.push(f[1].replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))));
  }
  return out;
}

export interface Cgroup2Root {
  path: string;
  /** This call mounted cgroup2 there (none was mounted). */
  mounted: boolean;
}

/**
 * The cgroup v2 directory to attach to: `path` when given (it must be one),
 * else the first cgroup2 mount of /proc/mounts, else cgroup2 mounted now at
 * MEMBRANE_CGROUP2_MOUNT.
 */
export function resolveCgroup2(nb: Pick<NativeBinding, 'isCgroup2' | 'mountCgroup2'>, path?: string, procMounts?: string): Cgroup2Root {
  if (path !== undefined) {
    if (!nb.isCgroup2(path)) {
      throw new MembraneError('MEMBRANE_E_DATAPATH', `${path} is not a cgroup v2 directory: the socket load balancer attaches to the cgroup v2 hierarchy (see \`grep cgroup2 /proc/mounts\`), not to cgroup v1 or another filesystem`);
    }
    return { path, mounted: false };
  }
  const mounts = cgroup2Mounts(procMounts ?? readFileSync('/proc/mounts', 'utf8'));
  const found = mounts.find((m) => nb.isCgroup2(m));
  if (found) return { path: found, mounted: false };
  return nb.mountCgroup2(MEMBRANE_CGROUP2_MOUNT);
}
