/**
 * IPCache: which identity an address belongs to, by longest-prefix match —
 * the model of the datapath's LPM map. Endpoints own their /32; CIDR
 * identities own the prefixes policies name; everything else is world.
 */
import { ReservedIdentity, formatPrefix, hostPrefix, parseIP, parsePrefix, prefixContains, type Prefix } from '@membrane/policy';

export interface IPCacheEntry {
  prefix: Prefix;
  identity: number;
  /** Endpoint id when the address is a local endpoint's. */
  endpointId?: number;
  /** Who put the entry here (an endpoint, a policy prefix, a test host). */
  source: string;
}

export class IPCache {
  private readonly entries = new Map<string, IPCacheEntry>();
  revision = 0;

  upsert(e: IPCacheEntry): void {
    const k = formatPrefix(e.prefix);
    const old = this.entries.get(k);
    if (old && old.identity === e.identity && old.endpointId === e.endpointId && old.source === e.source) return;
    this.entries.set(k, e);
    this.revision++;
  }

  delete(prefix: Prefix): boolean {
    const gone = this.entries.delete(formatPrefix(prefix));
    if (gone) this.revision++;
    return gone;
  }

  /** The most specific entry containing the address; world when none does. */
  lookup(ip: string): IPCacheEntry {
    const host = hostPrefix(ip);
    if (!host) throw new Error(`${ip} is not an IP address`);
    let best: IPCacheEntry | undefined;
    for (const e of this.entries.values()) {
      if (prefixContains(e.prefix, host) && (!best || e.prefix.bits > best.prefix.bits)) best = e;
    }
    if (best) return best;
    const world = parsePrefix(parseIP(ip)!.family === 4 ? '0.0.0.0/0' : '::/0') as Prefix;
    return { prefix: world, identity: ReservedIdentity.world, source: 'world' };
  }

  list(): IPCacheEntry[] {
    return [...this.entries.values()].sort((a, b) => formatPrefix(a.prefix).localeCompare(formatPrefix(b.prefix)));
  }
}
