/**
 * Verdicts read from a MapState: one direction of one endpoint at a time
 * (decideDirection), and a whole connection — the sender's egress and the
 * receiver's ingress (decideConnection).
 */
import type { DnsMatcher } from './l7/dns.js';
import { dnsMatches } from './l7/dns.js';
import { httpRuleMatches, type HttpRequest } from './l7/http.js';
import type { DirectionPolicy, MapStateEntry } from './mapstate.js';
import { protoName } from './ports.js';
import { formatOrigin, type Direction, type RuleOrigin } from './rule.js';

/** Cilium's drop reasons (pkg/monitor/api/drop.go). */
export const DropReason = { POLICY_DENIED: 133, POLICY_DENY: 181 } as const;

export interface L7Request {
  http?: HttpRequest;
  dns?: { query: string };
}

export interface DirectionVerdict {
  direction: Direction;
  enforced: boolean;
  allowed: boolean;
  /** Where the decision fell: L3/L4 (datapath) or L7 (proxy). */
  stage: 'l3l4' | 'l7';
  /** For a denial at L3/L4: 133 (no allow, default deny) or 181 (deny rule). */
  dropReason?: number;
  /** For a denial at L7 of an HTTP request. */
  httpStatus?: number;
  /** The connection is redirected to the L7 proxy (some matching entry has L7 rules and none is L7-free). */
  proxied: boolean;
  rules: RuleOrigin[];
  reason: string;
}

function uniq(origins: RuleOrigin[]): RuleOrigin[] {
  return [...new Set(origins)];
}

function list(origins: RuleOrigin[]): string {
  return origins.map(formatOrigin).join(', ');
}

export function decideDirection(
  dp: DirectionPolicy,
  who: string,
  peer: number,
  proto: number,
  port: number,
  req: L7Request = {},
): DirectionVerdict {
  const d = dp.direction;
  const base = { direction: d, enforced: dp.enforced, proxied: false };
  const what = proto === 1 || proto === 58 ? `${protoName(proto)} type ${port}` : `${port}/${protoName(proto)}`;
  if (!dp.enforced) {
    return { ...base, allowed: true, stage: 'l3l4', rules: [], reason: `${d} of ${who} is not under policy enforcement` };
  }
  const matching = dp.matching(peer, proto, port);
  const denies = matching.filter((e) => e.deny);
  if (denies.length > 0) {
    const rules = uniq(denies.flatMap((e) => e.origins));
    return { ...base, allowed: false, stage: 'l3l4', dropReason: DropReason.POLICY_DENY, rules, reason: `${d} of ${who} denied on ${what} by ${list(rules)}` };
  }
  const allows = matching.filter((e) => !e.deny);
  if (allows.length === 0) {
    if (!dp.defaultDeny) {
      return { ...base, allowed: true, stage: 'l3l4', rules: [], reason: `${d} of ${who}: no rule matches ${what} and no policy selecting it is default-deny (enableDefaultDeny: false)` };
    }
    return {
      ...base,
      allowed: false,
      stage: 'l3l4',
      dropReason: DropReason.POLICY_DENIED,
      rules: [],
      reason: `${d} of ${who}: no rule allows ${what} ${d === 'ingress' ? 'from' : 'to'} this peer (default deny)`,
    };
  }
  const free = allows.filter((e) => e.l7 === null);
  if (free.length > 0) {
    const rules = uniq(free.flatMap((e) => e.origins));
    return { ...base, allowed: true, stage: 'l3l4', rules, reason: `${d} of ${who} allowed on ${what} by ${list(rules)}` };
  }
  // Every matching allow carries L7 rules: the connection goes through the proxy.
  return decideL7(allows, { ...base, proxied: true }, who, what, req);
}

function decideL7(allows: MapStateEntry[], base: { direction: Direction; enforced: boolean; proxied: boolean }, who: string, what: string, req: L7Request): DirectionVerdict {
  const d = base.direction;
  const http = allows.flatMap((e) => e.l7!.http);
  const dns = allows.flatMap((e) => e.l7!.dns);
  const all = uniq(allows.flatMap((e) => e.origins));
  if (req.http) {
    const r = req.http;
    const hit = http.filter((h) => httpRuleMatches(h.rule, r));
    if (hit.length > 0) {
      const rules = uniq(hit.map((h) => h.origin));
      return { ...base, allowed: true, stage: 'l7', rules, reason: `${d} of ${who}: ${r.method} ${r.path} allowed on ${what} by ${list(rules)} (${hit[0]!.rule.text})` };
    }
    return {
      ...base,
      allowed: false,
      stage: 'l7',
      httpStatus: 403,
      rules: all,
      reason: `${d} of ${who}: ${r.method} ${r.path} matches no HTTP rule on ${what} of ${list(all)} (403 Access denied)`,
    };
  }
  if (req.dns) {
    const q = req.dns.query;
    const hit = dns.filter((x: { matcher: DnsMatcher }) => dnsMatches(x.matcher, q));
    if (hit.length > 0) {
      const rules = uniq(hit.map((h) => h.origin));
      return { ...base, allowed: true, stage: 'l7', rules, reason: `${d} of ${who}: DNS query ${q} allowed by ${list(rules)} (${hit[0]!.matcher.text})` };
    }
    return { ...base, allowed: false, stage: 'l7', rules: all, reason: `${d} of ${who}: DNS query ${q} matches no DNS rule of ${list(all)} (REFUSED)` };
  }
  // A connection without a request to judge: the datapath lets it reach the proxy.
  return { ...base, allowed: true, stage: 'l3l4', rules: all, reason: `${d} of ${who} allowed on ${what} to the L7 proxy by ${list(all)} (requests are judged there)` };
}

export interface ConnectionVerdict {
  allowed: boolean;
  /** The side whose verdict decided a denial, or undefined when allowed. */
  deniedBy?: Direction;
  egress?: DirectionVerdict;
  ingress?: DirectionVerdict;
  rules: RuleOrigin[];
  reason: string;
  dropReason?: number;
  httpStatus?: number;
}

/** Both sides: the sender's egress (when the sender is an endpoint) and the receiver's ingress (when it is one). */
export function decideConnection(egress: DirectionVerdict | undefined, ingress: DirectionVerdict | undefined): ConnectionVerdict {
  for (const v of [egress, ingress]) {
    if (v && !v.allowed) {
      return {
        allowed: false,
        deniedBy: v.direction,
        ...(egress ? { egress } : {}),
        ...(ingress ? { ingress } : {}),
        rules: v.rules,
        reason: v.reason,
        ...(v.dropReason !== undefined ? { dropReason: v.dropReason } : {}),
        ...(v.httpStatus !== undefined ? { httpStatus: v.httpStatus } : {}),
      };
    }
  }
  const sides = [egress, ingress].filter((v): v is DirectionVerdict => v !== undefined);
  const rules = uniq(sides.flatMap((v) => v.rules));
  const reason = sides.length ? sides.map((v) => v.reason).join('; ') : 'neither side is an endpoint: no policy applies';
  return { allowed: true, ...(egress ? { egress } : {}), ...(ingress ? { ingress } : {}), rules, reason };
}
