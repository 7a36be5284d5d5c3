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
import type { Direction, PolicyRef, RuleOrigin } from './rule.js';

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
  /** identity → (proto, port, endPort, deny) packed in one number → entry. */
  private readonly index = new Map<number, Map<number, MapStateEntry>>();

  constructor(
    readonly direction: Direction,
    /** Some rule selecting the endpoint has a section for this direction. */
    public enforced = false,
    /** ...and at least one of those rules is default-deny. */
    public defaultDeny = false,
    /** The policies of those default-deny rules (what a default-deny drop is attributed to). */
    readonly defaultDenyBy: PolicyRef[] = [],
  ) {}

  add(key: MapStateKey, deny: boolean, origin: RuleOrigin, l7: { http?: HttpRule[]; dns?: DnsMatcher[] } | undefined): void {
    let byPort = this.index.get(key.identity);
    if (!byPort) {
      byPort = new Map();
      this.index.set(key.identity, byPort);
    }
    // proto < 256, ports < 65536: the packed key stays below 2^42, exact in a double.
    const packed = ((key.proto * 65536 + key.port) * 65536 + key.endPort) * 2 + (deny ? 1 : 0);
    let e = byPort.get(packed);
    if (!e) {
      e = { identity: key.identity, proto: key.proto, port: key.port, endPort: key.endPort, deny, l7: l7 ? { http: [], dns: [] } : null, origins: [origin] };
      byPort.set(packed, e);
      this.entries.push(e);
    } else {
      if (!l7) {
        // A contribution without L7 rules frees this key at L7 (Cilium expands
        // nil L7 rules to an allow-all rule when merging; pkg/policy/l4.go).
        e.l7 = null;
      }
      if (!e.origins.includes(origin)) e.origins.push(origin);
    }
    if (e.l7 && l7) {
      if (l7.http) for (const rule of l7.http) e.l7.http.push({ rule, origin });
      if (l7.dns) for (const matcher of l7.dns) e.l7.dns.push({ matcher, origin });
    }
  }

  /** Entries whose key covers (identity, proto, port), the identity's own first. */
  matching(identity: number, proto: number, port: number): MapStateEntry[] {
    const out: MapStateEntry[] = [];
    const scan = (byPort: Map<number, MapStateEntry> | undefined) => {
      if (!byPort) return;
      for (const e of byPort.values()) {
        if (e.proto !== 0 && e.proto !== proto) continue;
        if (port < e.port || port > e.endPort) continue;
        out.push(e);
      }
    };
    scan(this.index.get(identity));
    if (identity !== ANY_IDENTITY) scan(this.index.get(ANY_IDENTITY));
    return out;
  }

  /** Entries of one peer identity (not including the any-peer entries). */
  forIdentity(identity: number): MapStateEntry[] {
    return [...(this.index.get(identity)?.values() ?? [])];
  }
}

export interface EndpointPolicy {
  /** The identity whose policy this is. */
  identity: number;
  ingress: DirectionPolicy;
  egress: DirectionPolicy;
}
