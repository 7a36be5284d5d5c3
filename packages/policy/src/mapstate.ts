/**
 * MapState: the allow and deny entries of one endpoint in one direction,
 * keyed by (peer identity, protocol, port range), each listing the rules
 * that produced it. It is what the datapath enforces and what every verdict
 * is read from.
 *
 * Semantics of a lookup (peer, protocol, port), in order:
 *  1. A direction that no rule enforces allows everything.
 *  2. Any matching deny entry denies (deny beats every allow).
 *  3. No matching allow entry: denied under default deny, else allowed.
 *  4. L7: if any matching allow entry carries no L7 rules the request is
 *     free; otherwise it must match one of the L7 rules of the matching
 *     entries (they are OR-ed).
 * Identity 0 in a key means any peer; protocol 0 means every protocol
 * (ICMP included, the ICMP type standing in the port).
 */
import { ANY_IDENTITY } from './identity.js';
import type { DnsMatcher } from './l7/dns.js';
import type { HttpRule } from './l7/http.js';
import type { Direction, RuleOrigin } from './rule.js';

export interface MapStateKey {
  identity: number;
  proto: number;
  port: number;
  endPort: number;
}

export interface L7Entry {
  http: { rule: HttpRule; origin: RuleOrigin }[];
  dns: { matcher: DnsMatcher; origin: RuleOrigin }[];
}

export interface MapStateEntry extends MapStateKey {
  deny: boolean;
  /** null: no L7 restriction for this key. */
  l7: L7Entry | null;
  origins: RuleOrigin[];
}

export function keyString(k: MapStateKey): string {
  return `${k.identity}/${k.proto}/${k.port}-${k.endPort}`;
}

export class DirectionPolicy {
  readonly entries: MapStateEntry[] = [];
  private readonly byKey = new Map<string, MapStateEntry>();
  private readonly byIdentity = new Map<number, MapStateEntry[]>();

  constructor(
    readonly direction: Direction,
    /** Some rule selecting the endpoint has a section for this direction. */
    public enforced = false,
    /** ...and at least one of those rules is default-deny. */
    public defaultDeny = false,
  ) {}

  add(key: MapStateKey, deny: boolean, origin: RuleOrigin, l7: { http?: HttpRule[]; dns?: DnsMatcher[] } | undefined): void {
    const k = `${keyString(key)}/${deny ? 'D' : 'A'}`;
    let e = this.byKey.get(k);
    if (!e) {
      e = { ...key, deny, l7: l7 ? { http: [], dns: [] } : null, origins: [] };
      this.byKey.set(k, e);
      this.entries.push(e);
      const list = this.byIdentity.get(key.identity);
      if (list) list.push(e);
      else this.byIdentity.set(key.identity, [e]);
    } else if (!l7) {
      // A contribution without L7 rules frees this key at L7 (Cilium expands
      // nil L7 rules to an allow-all rule when merging; pkg/policy/l4.go).
      e.l7 = null;
    }
    if (!e.origins.includes(origin)) e.origins.push(origin);
    if (e.l7 && l7) {
      for (const rule of l7.http ?? []) e.l7.http.push({ rule, origin });
      for (const matcher of l7.dns ?? []) e.l7.dns.push({ matcher, origin });
    }
  }

  /** Entries whose key covers (identity, proto, port), the identity's own first. */
  matching(identity: number, proto: number, port: number): MapStateEntry[] {
    const out: MapStateEntry[] = [];
    const scan = (list: MapStateEntry[] | undefined) => {
      if (!list) return;
      for (const e of list) {
        if (e.proto !== 0 && e.proto !== proto) continue;
        if (port < e.port || port > e.endPort) continue;
        out.push(e);
      }
    };
    scan(this.byIdentity.get(identity));
    if (identity !== ANY_IDENTITY) scan(this.byIdentity.get(ANY_IDENTITY));
    return out;
  }
}

export interface EndpointPolicy {
  /** The identity whose policy this is. */
  identity: number;
  ingress: DirectionPolicy;
  egress: DirectionPolicy;
}
