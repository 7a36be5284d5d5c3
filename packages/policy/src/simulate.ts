/**
 * The policy simulator: a scenario's world → identities → MapStates → one
 * verdict per probe, read by the same functions the datapath is programmed
 * from. Nothing here sends a packet.
 */
import { formatIP, parseIP } from './cidr.js';
import { decideConnection, decideDirection, type ConnectionVerdict, type DirectionVerdict, type L7Request } from './decide.js';
import {
  FIRST_CLUSTER_IDENTITY,
  FIRST_LOCAL_IDENTITY,
  ReservedIdentity,
  cidrIdentity,
  endpointIdentityLabels,
  reservedIdentities,
  type Identity,
  type ReservedName,
} from './identity.js';
import type { EndpointPolicy } from './mapstate.js';
import { Proto, protoNumber } from './ports.js';
import { resolveAll, resolveEndpoints } from './resolve.js';
import type { RuleOrigin } from './rule.js';
import type { Scenario, ScenarioProbe } from './scenario.js';

export type PeerKind = 'endpoint' | 'outside';

export interface WorldPeer {
  /** `namespace/name` for endpoints, the name for outside peers. */
  name: string;
  kind: PeerKind;
  ip?: string;
  identity: Identity;
}

export interface World {
  peers: Map<string, WorldPeer>;
  identities: Identity[];
  /** By identity: the host's, and each endpoint identity's (without named ports of its own). */
  policies: Map<number, EndpointPolicy>;
  /** By endpoint (`namespace/name`), named ports resolved against its containers. */
  endpointPolicies: Map<string, EndpointPolicy>;
}

/** The identities of a scenario: reserved ones, one per distinct endpoint label set, one per outside IP. */
export function buildWorld(s: Scenario): World {
  const identities: Identity[] = reservedIdentities();
  const reserved = new Map(identities.map((i) => [i.id, i]));
  const byLabels = new Map<string, Identity>();
  const peers = new Map<string, WorldPeer>();
  let nextCluster = FIRST_CLUSTER_IDENTITY;
  let nextLocal = FIRST_LOCAL_IDENTITY;

  const usedIPs = new Set(s.endpoints.map((e) => e.ip).filter((x): x is string => !!x));
  let auto = 1;
  const autoIP = () => {
    for (;;) {
      const ip = `10.255.${auto >> 8}.${auto & 0xff}`;
      auto++;
      if (!usedIPs.has(ip)) {
        usedIPs.add(ip);
        return ip;
      }
    }
  };

  for (const e of s.endpoints) {
    const labels = endpointIdentityLabels({
      namespace: e.namespace,
      podLabels: e.labels,
      namespaceLabels: s.namespaces[e.namespace]?.labels ?? {},
      ...(e.serviceAccount ? { serviceAccount: e.serviceAccount } : {}),
    });
    let id = byLabels.get(labels.toString());
    if (!id) {
      id = { id: nextCluster++, labels };
      byLabels.set(labels.toString(), id);
      identities.push(id);
    }
    peers.set(`${e.namespace}/${e.name}`, { name: `${e.namespace}/${e.name}`, kind: 'endpoint', ip: e.ip ?? autoIP(), identity: id });
  }
  const byIP = new Map<string, Identity>();
  for (const o of s.outside) {
    let identity: Identity;
    if (o.entity) {
      const name = o.entity === 'all' || o.entity === 'cluster' ? 'world' : o.entity;
      identity = reserved.get(ReservedIdentity[name as ReservedName])!;
    } else {
      const ip = o.ip!;
      const key = formatIP(parseIP(ip)!.family, parseIP(ip)!.bytes);
      let id = byIP.get(key);
      if (!id) {
        id = cidrIdentity(nextLocal++, key)!;
        byIP.set(key, id);
        identities.push(id);
      }
      identity = id;
    }
    peers.set(o.name, { name: o.name, kind: 'outside', ...(o.ip ? { ip: o.ip } : {}), identity });
  }

  const dnsNames = new Map<string, string[]>();
  for (const o of s.outside) {
    if (!o.ip || !o.fqdns) continue;
    const p = parseIP(o.ip)!;
    const key = formatIP(p.family, p.bytes);
    dnsNames.set(key, [...(dnsNames.get(key) ?? []), ...o.fqdns]);
  }

  const rules = s.policies.flatMap((p) => p.rules);
  const subjects = [...new Map([...peers.values()].filter((p) => p.kind === 'endpoint').map((p) => [p.identity.id, p.identity])).values()];
  subjects.push(reserved.get(ReservedIdentity.host)!);
  const ctx = { identities, dnsNames };
  const policies = resolveAll(rules, ctx, subjects);
  const endpointPolicies = resolveEndpoints(
    rules,
    ctx,
    s.endpoints.map((e) => ({ key: `${e.namespace}/${e.name}`, identity: peers.get(`${e.namespace}/${e.name}`)!.identity, namedPorts: e.ports ?? [] })),
  );
  return { peers, identities, policies, endpointPolicies };
}

export interface ProbeResult {
  from: string;
  to: string;
  port?: number;
  protocol: string;
  icmp?: { type: number; code?: number };
  http?: { method: string; path: string; host: string; headers?: Record<string, string> };
  dns?: { query: string };
  verdict: 'allowed' | 'denied';
  expect?: 'allowed' | 'denied';
  reason: string;
  rules: RuleSummary[];
  dropReason?: number;
  httpStatus?: number;
  deniedBy?: 'ingress' | 'egress';
  fromIdentity: number;
  toIdentity: number;
  egress?: SideSummary;
  ingress?: SideSummary;
}

export interface RuleSummary {
  kind: string;
  namespace?: string;
  name: string;
  section: string;
  index: number;
  spec?: number;
}

export interface SideSummary {
  enforced: boolean;
  verdict: 'allowed' | 'denied';
  stage: 'l3l4' | 'l7';
  proxied: boolean;
  rules: RuleSummary[];
  reason: string;
}

export function summarizeRule(o: RuleOrigin): RuleSummary {
  return {
    kind: o.kind,
    ...(o.namespace ? { namespace: o.namespace } : {}),
    name: o.name,
    section: o.section,
    index: o.index,
    ...(o.spec !== undefined ? { spec: o.spec } : {}),
  };
}

function side(v: DirectionVerdict): SideSummary {
  return { enforced: v.enforced, verdict: v.allowed ? 'allowed' : 'denied', stage: v.stage, proxied: v.proxied, rules: v.rules.map(summarizeRule), reason: v.reason };
}

function findPeer(world: World, name: string): WorldPeer {
  const p = world.peers.get(name) ?? world.peers.get(`default/${name}`);
  if (!p) throw new Error(`unknown peer ${name}`);
  return p;
}

export function evaluateProbe(world: World, probe: ScenarioProbe): { result: ProbeResult; verdict: ConnectionVerdict } {
  const from = findPeer(world, probe.from);
  const to = findPeer(world, probe.to);
  const proto = probe.protocol === 'ICMP' ? Proto.ICMP : protoNumber(probe.protocol)!;
  const port = probe.protocol === 'ICMP' ? probe.icmp?.type ?? 8 : probe.port!;
  const req: L7Request = {};
  let http: ProbeResult['http'];
  if (probe.http) {
    // Without a host the request carries the address it was sent to, as curl does.
    const host = probe.http.host ?? (to.ip ? (port === 80 ? to.ip : `${to.ip}:${port}`) : to.name);
    http = {
      method: probe.http.method ?? 'GET',
      path: probe.http.path ?? '/',
      host,
      ...(probe.http.headers ? { headers: probe.http.headers } : {}),
    };
    req.http = { method: http.method, path: http.path, host: http.host, headers: probe.http.headers ?? {} };
  }
  if (probe.dns) req.dns = { query: probe.dns.query };

  const isSubject = (p: WorldPeer) => p.kind === 'endpoint' || p.identity.id === ReservedIdentity.host;
  let egress: DirectionVerdict | undefined;
  let ingress: DirectionVerdict | undefined;
  if (isSubject(from)) {
    const pol = world.endpointPolicies.get(from.name) ?? world.policies.get(from.identity.id)!;
    egress = decideDirection(pol.egress, from.name, to.identity.id, proto, port, req);
  }
  if (isSubject(to)) {
    const pol = world.endpointPolicies.get(to.name) ?? world.policies.get(to.identity.id)!;
    ingress = decideDirection(pol.ingress, to.name, from.identity.id, proto, port, req);
  }
  const v = decideConnection(egress, ingress);
  const result: ProbeResult = {
    from: probe.from,
    to: probe.to,
    ...(probe.protocol !== 'ICMP' ? { port } : {}),
    protocol: probe.protocol,
    ...(probe.icmp ? { icmp: probe.icmp } : {}),
    ...(http ? { http } : {}),
    ...(probe.dns ? { dns: probe.dns } : {}),
    verdict: v.allowed ? 'allowed' : 'denied',
    ...(probe.expect ? { expect: probe.expect } : {}),
    reason: v.reason,
    rules: v.rules.map(summarizeRule),
    ...(v.dropReason !== undefined ? { dropReason: v.dropReason } : {}),
    ...(v.httpStatus !== undefined ? { httpStatus: v.httpStatus } : {}),
    ...(v.deniedBy ? { deniedBy: v.deniedBy } : {}),
    fromIdentity: from.identity.id,
    toIdentity: to.identity.id,
    ...(egress ? { egress: side(egress) } : {}),
    ...(ingress ? { ingress: side(ingress) } : {}),
  };
  return { result, verdict: v };
}

export function simulate(s: Scenario): ProbeResult[] {
  const world = buildWorld(s);
  return s.probes.map((p) => evaluateProbe(world, p).result);
}
