/**
 * The toFQDNs cache: which addresses names resolved to through the DNS
 * proxy, and until when (the answer's TTL, raised to the minimum TTL when
 * it is lower: Cilium's --tofqdns-min-ttl, default 0). The policy engine
 * selects a toFQDNs peer by the names of an address (dnsNames); an address
 * leaves the selection when its last name expires. Established connections
 * are not cut by expiry: conntrack keeps them, as in Cilium.
 *
 * Pure: time comes from `now`, and nothing here touches the kernel.
 */

export interface FqdnCacheEntry {
  name: string;
  ip: string;
  /** Milliseconds since the epoch. */
  expiresAt: number;
}

export interface FqdnCacheOptions {
  /** Seconds; an answer's TTL below it is raised to it. */
  minTtl?: number;
  /** At most this many name/address pairs; beyond, the ones that expire first go (default 50,000). */
  maxEntries?: number;
  now?: () => number;
}

const bare = (n: string) => n.trim().toLowerCase().replace(/\.$/, '');

export class FqdnCache {
  /** `name ip` → expiry. */
  private readonly entries = new Map<string, FqdnCacheEntry>();
  private readonly now: () => number;

  constructor(private readonly o: FqdnCacheOptions = {}) {
    this.now = o.now ?? Date.now;
  }

  /**
   * Records that each name resolved to each ip for ttl seconds. True when
   * the selection changed (a pair that was not there), false when known
   * pairs only lived longer. A pair never expires sooner than it did.
   */
  learn(names: readonly string[], ips: readonly string[], ttlSeconds: number): boolean {
    const expiresAt = this.now() + Math.max(ttlSeconds, this.o.minTtl ?? 0) * 1000;
    let changed = false;
    for (const n of names) {
      const name = bare(n);
      for (const ip of ips) {
        const key = `${name} ${ip}`;
        const old = this.entries.get(key);
        if (old) old.expiresAt = Math.max(old.expiresAt, expiresAt);
        else {
          this.entries.set(key, { name, ip, expiresAt });
          changed = true;
        }
      }
    }
    this.trim();
    return changed;
  }

  /** Drops the pairs whose time is up; true when any went. */
  expire(): boolean {
    const now = this.now();
    let changed = false;
    for (const [k, e] of this.entries) {
      if (e.expiresAt <= now) {
        this.entries.delete(k);
        changed = true;
      }
    }
    return changed;
  }

  /** When the next pair expires (undefined: none). */
  nextExpiry(): number | undefined {
    let next: number | undefined;
    for (const e of this.entries.values()) if (next === undefined || e.expiresAt < next) next = e.expiresAt;
    return next;
  }

  /** address → names, what the policy engine selects toFQDNs peers by. */
  dnsNames(): Map<string, string[]> {
    const out = new Map<string, string[]>();
    for (const e of this.entries.values()) out.set(e.ip, [...(out.get(e.ip) ?? []), e.name]);
    for (const names of out.values()) names.sort();
    return out;
  }

  list(): FqdnCacheEntry[] {
    return [...this.entries.values()].map((e) => ({ ...e })).sort((a, b) => a.name.localeCompare(b.name) || a.ip.localeCompare(b.ip));
  }

  /** Puts back what list() returned (an agent restart), without what has expired since. */
  restore(list: readonly FqdnCacheEntry[]): void {
    const now = this.now();
    for (const e of list) if (e.expiresAt > now) this.entries.set(`${bare(e.name)} ${e.ip}`, { name: bare(e.name), ip: e.ip, expiresAt: e.expiresAt });
    this.trim();
  }

  /** Forgets everything; true when there was anything. */
  clear(): boolean {
    const had = this.entries.size > 0;
    this.entries.clear();
    return had;
  }

  get size(): number {
    return this.entries.size;
  }

  private trim(): void {
    const max = this.o.maxEntries ?? 50_000;
    if (this.entries.size <= max) return;
    const byExpiry = [...this.entries].sort((a, b) => a[1].expiresAt - b[1].expiresAt);
    for (const [k] of byExpiry.slice(0, this.entries.size - max)) this.entries.delete(k);
  }
}
