/**
 * EndpointRealizer: makes the kernel enforce an endpoint's desired policy.
 * It compares what it wants to install with what it installed last and, on a
 * change, fills a new policy map (entries and each direction's enforcement
 * together) and swaps it in with one update: every packet is judged wholly
 * by the old policy or wholly by the new one, so a packet both deny is never
 * let through and a packet both allow is never dropped.
 */
import { endpointFlags, ipv4ToNumber, type Endpoint, type PolicyMapWrite } from '@membrane/datapath';
import type { EndpointPolicy, PolicyMapEntry, RuleOrigin } from '@membrane/policy';
import { policyMapWrites, type ProxyPorts } from './policy-writes.js';

/** The datapath operations the realizer needs (Datapath implements them; tests may fake them). */
export interface PolicyDatapath {
  setEndpoint(ifindex: number, ep: Endpoint): void;
  getEndpoint(ifindex: number): Endpoint | undefined;
  deleteEndpoint(ifindex: number): boolean;
  replacePolicy(epId: number, writes: readonly PolicyMapWrite[]): void;
  removePolicy(epId: number): boolean;
  ipcacheUpsert(cidr: string, identity: number, epId?: number): void;
  ipcacheDelete(cidr: string): boolean;
}

export interface RealizedEndpoint {
  ifindex: number;
  epId: number;
  ipv4: string;
  identity: number;
}

interface Installed {
  ep: RealizedEndpoint;
  flags: number;
  fingerprint: string;
  entries: PolicyMapEntry[];
}

export interface RealizeResult {
  changed: boolean;
  entries: number;
}

export class EndpointRealizer {
  private readonly installed = new Map<number, Installed>();

  constructor(
    private readonly dp: PolicyDatapath,
    private readonly proxy: ProxyPorts = {},
  ) {}

  realize(ep: RealizedEndpoint, policy: EndpointPolicy): RealizeResult {
    const w = policyMapWrites(policy, this.proxy);
    const flags = endpointFlags(w);
    const fingerprint = JSON.stringify(w.writes);
    const old = this.installed.get(ep.epId);
    const current = this.dp.getEndpoint(ep.ifindex);
    const same = old && old.fingerprint === fingerprint && current && current.ep_id === ep.epId && current.identity === ep.identity && current.ipv4 === ipv4ToNumber(ep.ipv4) && current.flags === 0;
    if (same) return { changed: false, entries: w.writes.length };

    this.dp.ipcacheUpsert(`${ep.ipv4}/32`, ep.identity, ep.epId);
    if (!old || old.fingerprint !== fingerprint) this.dp.replacePolicy(ep.epId, w.writes);
    // The endpoint entry forces no enforcement of its own: it all lives in the map.
    if (!current || current.ep_id !== ep.epId || current.identity !== ep.identity || current.ipv4 !== ipv4ToNumber(ep.ipv4) || current.flags !== 0) {
      this.dp.setEndpoint(ep.ifindex, { ep_id: ep.epId, ipv4: ipv4ToNumber(ep.ipv4), identity: ep.identity, flags: 0 });
    }
    this.installed.set(ep.epId, { ep, flags, fingerprint, entries: w.entries });
    return { changed: true, entries: w.writes.length };
  }

  remove(ep: RealizedEndpoint): void {
    this.dp.deleteEndpoint(ep.ifindex);
    this.dp.removePolicy(ep.epId);
    this.dp.ipcacheDelete(`${ep.ipv4}/32`);
    this.installed.delete(ep.epId);
  }

  /** The rules behind a policy-map entry an event names (by its cookie). */
  origins(epId: number, cookie: number): RuleOrigin[] {
    const e = this.installed.get(epId)?.entries[cookie - 1];
    if (!e) return [];
    return [...new Set(e.sources.flatMap((s) => s.origins))];
  }
}
