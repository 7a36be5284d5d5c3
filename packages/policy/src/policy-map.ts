/**
 * From a MapState to the entries of the datapath's policy map, and the
 * reference model of the lookup the BPF program performs on them.
 *
 * The kernel map is an LPM trie per endpoint. A key is
 *   identity (32 bits, always exact) | direction (8, exact) | protocol (8) | port (16)
 * with a prefix that covers identity and direction and then 0 bits (every
 * protocol and port), 8 bits (one protocol, every port) or 8+k bits (one
 * protocol, a block of 2^(16-k) ports). Port ranges become aligned blocks.
 *
 * The program does two longest-prefix lookups, one with the peer's identity
 * and one with identity 0 (any peer), and combines them:
 *   1. either result is a deny          → drop (deny beats every allow);
 *   2. some result is an allow          → pass, through the L7 proxy unless
 *                                          one of the results is L7-free;
 *   3. no result                        → drop under default deny, else pass.
 * A longest-prefix match only sees the most specific entry, so before
 * writing, every block takes on what broader entries that also cover it
 * impose: a covering deny (same identity or any) turns it into a deny; a
 * covering L7-free allow frees it. With that, the two lookups give exactly
 * the verdict decideDirection gives for every (peer, protocol, port).
 */
import { ANY_IDENTITY } from './identity.js';
import type { DirectionPolicy, MapStateEntry } from './mapstate.js';
import type { Direction } from './rule.js';

export const L7Parser = { NONE: 0, HTTP: 1, DNS: 2 } as const;

export interface PolicyMapEntry {
  identity: number;
  direction: Direction;
  /** 0 = every protocol (then the port is 0 and portBits 0). */
  proto: number;
  /** First port of the block. */
  port: number;
  /** How many leading bits of the port are fixed (0-16); 0 with a protocol = every port. */
  portBits: number;
  deny: boolean;
  /** For an allow: the proxy parser the connection is redirected to, NONE when L7-free. */
  l7: number;
  /** The MapState entries this block stands for (provenance for events and `policy trace`). */
  sources: MapStateEntry[];
}

/** The LPM prefix length over protocol and port (0, 8 or 8 + portBits). */
export function entryPrefix(e: Pick<PolicyMapEntry, 'proto' | 'portBits'>): number {
  return e.proto === 0 ? 0 : 8 + e.portBits;
}

/** [lo, hi] as the smallest list of aligned power-of-two blocks. */
export function portBlocks(lo: number, hi: number): { port: number; bits: number }[] {
  const out: { port: number; bits: number }[] = [];
  let p = lo;
  while (p <= hi) {
    let size = 1;
    let bits = 16;
    // Grow the block while p stays aligned to it and it stays inside [p, hi].
    while (bits > 0 && p % (size * 2) === 0 && p + size * 2 - 1 <= hi) {
      size *= 2;
      bits--;
    }
    out.push({ port: p, bits });
    p += size;
  }
  return out;
}

function covers(outer: PolicyMapEntry, inner: PolicyMapEntry): boolean {
  if (outer.proto === 0) return true;
  if (outer.proto !== inner.proto) return false;
  if (outer.portBits > inner.portBits) return false;
  const shift = 16 - outer.portBits;
  return outer.portBits === 0 || outer.port >>> shift === inner.port >>> shift;
}

function l7Parser(e: MapStateEntry): number {
  if (e.deny || e.l7 === null) return L7Parser.NONE;
  return e.l7.dns.length > 0 && e.l7.http.length === 0 ? L7Parser.DNS : L7Parser.HTTP;
}

/** The policy-map entries of one direction of an endpoint. */
export function toPolicyMapEntries(dp: DirectionPolicy): PolicyMapEntry[] {
  // 1. Blocks, merged by (identity, region): deny wins, then L7-free wins.
  const blocks = new Map<string, PolicyMapEntry>();
  for (const e of dp.entries) {
    const regions = e.proto === 0 ? [{ port: 0, bits: 0 }] : e.port === 0 && e.endPort === 65535 ? [{ port: 0, bits: 0 }] : portBlocks(e.port, e.endPort);
    for (const r of regions) {
      const k = `${e.identity}/${e.proto}/${r.port}/${r.bits}`;
      const b = blocks.get(k);
      const l7 = l7Parser(e);
      if (!b) {
        blocks.set(k, { identity: e.identity, direction: dp.direction, proto: e.proto, port: r.port, portBits: r.bits, deny: e.deny, l7, sources: [e] });
        continue;
      }
      b.sources.push(e);
      if (e.deny) b.deny = true;
      else if (l7 === L7Parser.NONE) b.l7 = L7Parser.NONE;
    }
  }
  const list = [...blocks.values()];
  const byIdentity = new Map<number, PolicyMapEntry[]>();
  for (const b of list) {
    const l = byIdentity.get(b.identity);
    if (l) l.push(b);
    else byIdentity.set(b.identity, [b]);
  }
  const anyClass = byIdentity.get(ANY_IDENTITY) ?? [];
  // 2. Propagate what covering entries impose (from the same identity, and from any-peer entries).
  for (const b of list) {
    if (b.deny) continue;
    const candidates = b.identity === ANY_IDENTITY ? anyClass : [...(byIdentity.get(b.identity) ?? []), ...anyClass];
    let deny = false;
    let free = b.l7 === L7Parser.NONE;
    for (const o of candidates) {
      if (o === b || !covers(o, b)) continue;
      if (o.deny) deny = true;
      else if (o.l7 === L7Parser.NONE) free = true;
    }
    if (deny) {
      b.deny = true;
      b.l7 = L7Parser.NONE;
    } else if (free) b.l7 = L7Parser.NONE;
  }
  return list;
}

export interface PolicyMapVerdict {
  allowed: boolean;
  /** The L7 parser the connection goes through (NONE when not redirected). */
  l7: number;
  matched: PolicyMapEntry[];
}

/** What the BPF program decides from the entries: the reference model, used to test the transform and the program. */
export function lookupPolicyMap(entries: readonly PolicyMapEntry[], enforced: boolean, defaultDeny: boolean, identity: number, proto: number, port: number): PolicyMapVerdict {
  if (!enforced) return { allowed: true, l7: L7Parser.NONE, matched: [] };
  const longest = (id: number): PolicyMapEntry | undefined => {
    let best: PolicyMapEntry | undefined;
    for (const e of entries) {
      if (e.identity !== id) continue;
      if (e.proto !== 0) {
        if (e.proto !== proto) continue;
        const shift = 16 - e.portBits;
        if (e.portBits > 0 && e.port >>> shift !== port >>> shift) continue;
      }
      if (!best || entryPrefix(e) > entryPrefix(best)) best = e;
    }
    return best;
  };
  const results = [longest(identity), identity === ANY_IDENTITY ? undefined : longest(ANY_IDENTITY)].filter((x): x is PolicyMapEntry => x !== undefined);
  if (results.some((r) => r.deny)) return { allowed: false, l7: L7Parser.NONE, matched: results };
  if (results.length > 0) {
    const free = results.some((r) => r.l7 === L7Parser.NONE);
    return { allowed: true, l7: free ? L7Parser.NONE : results.find((r) => r.l7 !== L7Parser.NONE)!.l7, matched: results };
  }
  return { allowed: !defaultDeny, l7: L7Parser.NONE, matched: [] };
}
