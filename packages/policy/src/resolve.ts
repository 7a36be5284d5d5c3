/**
 * Resolution: the rules in force + the known identities → the MapState of an
 * endpoint (per direction). Pure: the same inputs give the same MapState,
 * here, in the agent and in the browser.
 */
import { ANY_IDENTITY, ReservedIdentity, type Identity } from './identity.js';
import { SOURCE_RESERVED } from './labels.js';
import { DirectionPolicy, type EndpointPolicy } from './mapstate.js';
import { ANY_L4_PROTOCOLS, type NamedPort } from './ports.js';
import type { Direction, DirectionalRule, PortSpec, Rule, RuleOrigin } from './rule.js';
import { SelectorCache, type SelectionContext } from './selector-cache.js';
import type { EndpointSelector, Requirement } from './selector.js';

export interface ResolveOptions {
  /** Named ports of the endpoint itself (ingress rules name the receiver's ports). */
  namedPorts?: readonly NamedPort[];
  /** Named ports of every endpoint (egress rules name the peers' ports; Cilium resolves them cluster-wide). */
  clusterNamedPorts?: readonly NamedPort[];
  /**
   * The named ports of the endpoints that have a given identity. An egress
   * rule naming a port then resolves it per peer, against the containers of
   * the pods it selects (Kubernetes: a named port refers to the destination
   * pod's port), instead of the union over the cluster; peers without pods
   * (world, CIDR, any) fall back to clusterNamedPorts.
   */
  peerNamedPorts?: (identity: number) => readonly NamedPort[] | undefined;
  /**
   * Traffic from the local host to an endpoint is always allowed (Cilium's
   * default allow-localhost). An explicit deny still wins.
   */
  allowLocalhost?: boolean;
}

export const ALLOW_LOCALHOST_ORIGIN: RuleOrigin = { kind: 'Implicit', name: 'allow-localhost', section: 'implicit', index: 0 };

/** Does this rule's subject select the identity? Host policies select the host only, and endpoint policies never the host. */
export function selectsSubject(rule: Rule, id: Identity): boolean {
  const isHost = id.id === ReservedIdentity.host;
  if (rule.subject.kind === 'node') return isHost && rule.subject.selector.matches(id.labels);
  if (isHost || id.labels.hasSource(SOURCE_RESERVED)) return false;
  return rule.subject.selector.matches(id.labels);
}

/** The rules that select each subject, computed once per distinct subject selector. */
export function rulesBySubject(rules: readonly Rule[], subjects: readonly Identity[]): Map<number, Rule[]> {
  const bySelector = new Map<string, Rule[]>();
  for (const r of rules) {
    const k = `${r.subject.kind}:${r.subject.selector.toString()}`;
    const list = bySelector.get(k);
    if (list) list.push(r);
    else bySelector.set(k, [r]);
  }
  const out = new Map<number, Rule[]>();
  for (const list of bySelector.values()) {
    const probe = list[0]!;
    for (const id of subjects) {
      if (!selectsSubject(probe, id)) continue;
      const mine = out.get(id.id);
      if (mine) mine.push(...list);
      else out.set(id.id, [...list]);
    }
  }
  return out;
}

export class PolicyResolver {
  readonly cache: SelectorCache;

  /** A cache may be shared across resolutions while the identities (and DNS names) it was built on stay the same. */
  constructor(
    readonly ctx: SelectionContext,
    cache?: SelectorCache,
  ) {
    if (cache && cache.ctx !== ctx) throw new Error('a shared SelectorCache must have been built on the same SelectionContext');
    this.cache = cache ?? new SelectorCache(ctx);
  }

  /** The MapState of one endpoint, given the rules that select it (see rulesBySubject). */
  resolve(subject: Identity, selecting: readonly Rule[], opts: ResolveOptions = {}): EndpointPolicy {
    return {
      identity: subject.id,
      ingress: this.resolveDirection('ingress', selecting, opts),
      egress: this.resolveDirection('egress', selecting, opts),
    };
  }

  private resolveDirection(direction: Direction, selecting: readonly Rule[], opts: ResolveOptions): DirectionPolicy {
    const dp = new DirectionPolicy(direction);
    for (const r of selecting) {
      if (r.enforces[direction]) dp.enforced = true;
      if (r.defaultDeny[direction]) {
        dp.defaultDeny = true;
        if (!dp.defaultDenyBy.some((p) => p.kind === r.policy.kind && p.namespace === r.policy.namespace && p.name === r.policy.name)) dp.defaultDenyBy.push(r.policy);
      }
    }
    if (!dp.enforced) return dp;

    // fromRequires/toRequires of every selecting rule fold into every
    // label-based peer of this direction (allow and deny collected apart).
    const requirements = (deny: boolean): Requirement[] =>
      selecting.flatMap((r) => r[direction].filter((d) => d.deny === deny).flatMap((d) => d.requires.flatMap((s: EndpointSelector) => s.requirements)));
    const reqAllow = requirements(false);
    const reqDeny = requirements(true);

    const named = direction === 'ingress' ? opts.namedPorts ?? [] : opts.clusterNamedPorts ?? opts.namedPorts ?? [];
    const perPeer = direction === 'egress' ? opts.peerNamedPorts : undefined;
    for (const r of selecting) {
      for (const d of r[direction]) this.addRule(dp, d, d.deny ? reqDeny : reqAllow, named, perPeer);
    }
    // Enforced by rules that are all default-allow (enableDefaultDeny: false): traffic no
    // entry matches passes (DirectionPolicy.defaultDeny is false), but an allow with L7
    // rules still sends its port through the proxy — default-allow is no L7 wildcard
    // (Cilium docs, Policy Enforcement Modes: "EnableDefaultDeny does not apply to
    // layer-7 policy").
    if (direction === 'ingress' && opts.allowLocalhost !== false) {
      dp.add({ identity: ReservedIdentity.host, proto: 0, port: 0, endPort: 65535 }, false, ALLOW_LOCALHOST_ORIGIN, undefined);
    }
    return dp;
  }

  private addRule(dp: DirectionPolicy, d: DirectionalRule, reqs: readonly Requirement[], named: readonly NamedPort[], perPeer?: (identity: number) => readonly NamedPort[] | undefined): void {
    const ids = new Set<number>();
    for (const p of d.peers) {
      const peer = p.kind === 'endpoints' && reqs.length > 0 ? { kind: 'endpoints' as const, selector: p.selector.and(...reqs) } : p;
      const sel = this.cache.select(peer);
      if (sel === 'any') ids.add(ANY_IDENTITY);
      else for (const id of sel) ids.add(id);
    }
    if (ids.size === 0) return;
    const ports = d.ports === null ? [{ proto: 0, port: 0, endPort: 65535 } as PortSpec] : expandPorts(d.ports, named);
    const hasNamed = perPeer !== undefined && d.ports !== null && d.ports.some((p) => p.name !== undefined);
    for (const identity of ids) {
      const own = hasNamed && identity !== ANY_IDENTITY ? perPeer!(identity) : undefined;
      for (const p of own ? expandPorts(d.ports!, own) : ports) {
        dp.add({ identity, proto: p.proto, port: p.port, endPort: p.endPort }, d.deny, d.origin, p.l7);
      }
    }
  }
}

/** ANY → TCP, UDP, SCTP; named ports → the numbers they stand for (none if no container has the name). */
export function expandPorts(ports: readonly PortSpec[], named: readonly NamedPort[]): PortSpec[] {
  const out: PortSpec[] = [];
  for (const p of ports) {
    if (p.name !== undefined) {
      for (const n of named) {
        if (n.name !== p.name) continue;
        if (p.proto !== 0 && p.proto !== n.proto) continue;
        out.push({ ...p, proto: n.proto, port: n.port, endPort: n.port });
      }
      continue;
    }
    if (p.proto === 0) for (const proto of ANY_L4_PROTOCOLS) out.push({ ...p, proto });
    else out.push(p);
  }
  return out;
}

/** Resolve every subject at once, sharing one selector cache. */
export function resolveAll(
  rules: readonly Rule[],
  ctx: SelectionContext,
  subjects: readonly Identity[],
  opts: (id: Identity) => ResolveOptions = () => ({}),
  cache?: SelectorCache,
): Map<number, EndpointPolicy> {
  const resolver = new PolicyResolver(ctx, cache);
  const selecting = rulesBySubject(rules, subjects);
  const out = new Map<number, EndpointPolicy>();
  for (const s of subjects) out.set(s.id, resolver.resolve(s, selecting.get(s.id) ?? [], opts(s)));
  return out;
}

/** An endpoint to resolve: its identity and its own containers' named ports. */
export interface EndpointSubject<K> {
  key: K;
  identity: Identity;
  namedPorts: readonly NamedPort[];
}

/**
 * The MapState of every endpoint, with named ports resolved as Kubernetes
 * defines them: an ingress rule's port name against the endpoint's own
 * containers, an egress rule's against the containers of the peers it
 * selects (cluster-wide for peers without pods). Endpoints that share an
 * identity and their named ports share one resolution.
 */
export function resolveEndpoints<K>(
  rules: readonly Rule[],
  ctx: SelectionContext,
  endpoints: readonly EndpointSubject<K>[],
  opts: { cache?: SelectorCache; allowLocalhost?: boolean } = {},
): Map<K, EndpointPolicy> {
  const byIdentity = new Map<number, NamedPort[]>();
  const cluster: NamedPort[] = [];
  const seenCluster = new Set<string>();
  for (const e of endpoints) {
    const list = byIdentity.get(e.identity.id) ?? [];
    byIdentity.set(e.identity.id, list);
    for (const n of e.namedPorts) {
      const k = `${n.name}/${n.port}/${n.proto}`;
      if (!list.some((x) => `${x.name}/${x.port}/${x.proto}` === k)) list.push(n);
      if (!seenCluster.has(k)) {
        seenCluster.add(k);
        cluster.push(n);
      }
    }
  }
  const resolver = new PolicyResolver(ctx, opts.cache);
  const subjects = [...new Map(endpoints.map((e) => [e.identity.id, e.identity])).values()];
  const selecting = rulesBySubject(rules, subjects);
  const byGroup = new Map<string, EndpointPolicy>();
  const out = new Map<K, EndpointPolicy>();
  for (const e of endpoints) {
    const group = `${e.identity.id}|${e.namedPorts.map((n) => `${n.name}/${n.port}/${n.proto}`).sort().join(',')}`;
    let pol = byGroup.get(group);
    if (!pol) {
      pol = resolver.resolve(e.identity, selecting.get(e.identity.id) ?? [], {
        namedPorts: e.namedPorts,
        clusterNamedPorts: cluster,
        peerNamedPorts: (id) => byIdentity.get(id),
        ...(opts.allowLocalhost !== undefined ? { allowLocalhost: opts.allowLocalhost } : {}),
      });
      byGroup.set(group, pol);
    }
    out.set(e.key, pol);
  }
  return out;
}
