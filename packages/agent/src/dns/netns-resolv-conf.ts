/**
 * What a pod's processes see as /etc/resolv.conf: `ip netns exec NAME`
 * bind-mounts every file of /etc/netns/NAME/ over /etc/ (ip-netns(8)), so
 * the agent writes the pod's resolv.conf there before the pod's first
 * process starts, and `membrane exec` sees the same file.
 */
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { podResolvConf } from './cluster-names.js';

export interface PodEtcFiles {
  write(netns: string, namespace: string): void;
  remove(netns: string): void;
  /** Remove every pod's files whose namespace name starts with the prefix (`membrane down`, leftovers). */
  removeAll(prefix: string): void;
}

export function netnsResolvConf(nameserver: () => string, etcNetns = '/etc/netns'): PodEtcFiles {
  return {
    write(netns, namespace) {
      if (!netns.startsWith('mbr')) throw new Error(`refusing to write /etc/netns/${netns}: not a namespace of Membrane's`);
      const dir = join(etcNetns, netns);
      mkdirSync(dir, { recursive: true, mode: 0o755 });
      writeFileSync(join(dir, 'resolv.conf'), podResolvConf(namespace, nameserver()), { mode: 0o644 });
    },
    remove(netns) {
      if (!netns.startsWith('mbr')) return;
      rmSync(join(etcNetns, netns), { recursive: true, force: true });
    },
    removeAll(prefix) {
      if (!prefix.startsWith('mbr') || !existsSync(etcNetns)) return;
      for (const n of readdirSync(etcNetns)) if (n.startsWith(prefix)) rmSync(join(etcNetns, n), { recursive: true, force: true });
    },
  };
}
