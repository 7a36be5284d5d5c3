/**
 * What the L7 proxy needs to judge a request, from the agent's state in
 * force: the policies, the identities with their labels, the ipcache and
 * the local endpoints (address, name, identity, named ports). The proxy
 * resolves it with the same engine the datapath's entries came from.
 */
import type { PolicyManifest } from '@membrane/api';
import type { IPCacheEntry } from '@membrane/identity';
import { formatPrefix, type Identity, type NamedPort } from '@membrane/policy';
import type { ProxySnapshot } from '@membrane/proxy';

export interface SnapshotSources {
  policies: () => readonly { manifest: PolicyManifest }[];
  identities: () => readonly Identity[];
  ipcache: () => readonly IPCacheEntry[];
  endpoints: () => readonly { epId: number; ip: string; name: string; identity: number | undefined; namedPorts: NamedPort[] }[];
  /** toFQDNs: address → names (absent: none). */
  fqdns?: () => ReadonlyMap<string, readonly string[]>;
}

/** The snapshot without its revision (the hub numbers what changed). */
export type SnapshotContent = Omit<ProxySnapshot, 'revision'>;

export function buildSnapshot(s: SnapshotSources): SnapshotContent {
  return {
    policies: s.policies().map((p) => p.manifest),
    identities: s.identities().map((i) => ({ id: i.id, labels: i.labels.toStrings() })),
    ipcache: s.ipcache().map((e) => ({ prefix: formatPrefix(e.prefix), identity: e.identity })),
    endpoints: s
      .endpoints()
      .filter((e) => e.identity !== undefined)
      .map((e) => ({ epId: e.epId, ip: e.ip, name: e.name, identity: e.identity!, namedPorts: e.namedPorts })),
    fqdns: [...(s.fqdns?.() ?? [])].map(([ip, names]) => ({ ip, names: [...names] })),
  };
}
