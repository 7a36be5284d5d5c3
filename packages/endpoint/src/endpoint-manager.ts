/**
 * EndpointManager: owns regeneration, the way Cilium's endpoint manager
 * does. Given the endpoints of the node (labels, named ports, addresses) and
 * the rules in force, it computes everything the kernel must hold — each
 * endpoint's identity, the ipcache, each endpoint's policy map — and brings
 * the kernel there in two steps:
 *
 *   plan    identities on a copy of the allocator, every policy resolved,
 *           every changed endpoint's new policy map created and filled (not
 *           in force). Any failure closes what was prepared and throws:
 *           nothing in force has changed.
 *   commit  ipcache entries added, then each prepared map swapped in with
 *           one update per endpoint, endpoint entries written, endpoints
 *           that left removed, stale ipcache entries deleted, the allocator
 *           copy kept. If a swap fails, the endpoints already swapped get
 *           their previous map back, so every endpoint is on its previous
 *           policy or all are on the new one.
 *
 * The manager holds every identity reference of the node's endpoints and of
 * the CIDRs its rules name, recomputed from scratch on each plan
 * (IdentityAllocator.sync), so re-applying the same world never leaks one.
 * It keeps the map it installed for each endpoint open, which is what a
 * failed commit swaps back to.
 */
import { endpointFlags, ipv4ToNumber, type Endpoint, type PolicyMapWrite, type PreparedPolicy } from '@membrane/datapath';
import { IPCache, IdentityAllocator, type IPCacheEntry } from '@membrane/identity';
import {
  ReservedIdentity,
  SelectorCache,
  cidrIdentityLabels,
  endpointIdentityLabels,
  formatPrefix,
  hostPrefix,
  resolveEndpoints,
  type EndpointPolicy,
  type Identity,
  type LabelSet,
  type NamedPort,
  type PolicyMapEntry,
  type PolicyRef,
  type Prefix,
  type Rule,
  type RuleOrigin,
} from '@membrane/policy';
import { MembraneError } from '@membrane/api';
import { IPCacheSync, type IPCacheDatapath } from './ipcache-sync.js';
import { policyMapWrites, type EndpointPolicyWrites, type ProxyPorts } from './policy-writes.js';

/** The datapath operations regeneration needs (Datapath implements them; unit tests fake them). */
export interface EndpointDatapath extends IPCacheDatapath {
  setEndpoint(ifindex: number, ep: Endpoint): void;
  getEndpoint(ifindex: number): Endpoint | undefined;
  deleteEndpoint(ifindex: number): boolean;
  preparePolicy(epId: number, writes: readonly PolicyMapWrite[]): PreparedPolicy;
  installPolicy(p: PreparedPolicy): void;
  releasePolicy(p: PreparedPolicy): void;
  removePolicy(epId: number): boolean;
}

/** Where an endpoint lives in the kernel. */
export interface RealizedEndpoint {
  ifindex: number;
  epId: number;
  ipv4: string;
  identity: number;
}

/** An endpoint as the agent knows it: where it is, and what its identity and named ports derive from. */
export interface EndpointSpec {
  /** `namespace/name`, for messages and lookups. */
  name: string;
  epId: number;
  ifindex: number;
  ipv4: string;
  namespace: string;
  podLabels: Readonly<Record<string, string>>;
  namespaceLabels: Readonly<Record<string, string>>;
  serviceAccount: string;
  namedPorts: readonly NamedPort[];
}

/**
 * An endpoint without a pod network of its own (the agent's DNS server): an
 * identity from its labels and an ipcache entry, so peers' policies select
 * it as they would its pod, but no policy map (nothing here enforces its own).
 */
export interface VirtualEndpoint {
  name: string;
  ipv4: string;
  namespace: string;
  podLabels: Readonly<Record<string, string>>;
  namespaceLabels: Readonly<Record<string, string>>;
  serviceAccount: string;
}

export interface RegenerationInput {
  endpoints: readonly EndpointSpec[];
  rules: readonly Rule[];
  /** The host's own addresses (identity host in the ipcache); a virtual endpoint's address is never one. */
  hostAddresses: readonly string[];
  virtualEndpoints?: readonly VirtualEndpoint[];
  /** toFQDNs: address → the names it resolved to through the DNS proxy. Each address gets a CIDR identity (/32) and an ipcache entry. */
  dnsNames?: ReadonlyMap<string, readonly string[]>;
}

export interface PlannedEndpoint {
  ep: RealizedEndpoint;
  name: string;
  identity: Identity;
  policy: EndpointPolicy;
  writes: EndpointPolicyWrites;
  fingerprint: string;
  /** Set when its policy map changes: the new map, filled, not in force yet. */
  prepared?: PreparedPolicy;
}

export interface RegenerationPlan {
  readonly endpoints: ReadonlyMap<number, PlannedEndpoint>;
  /** Undefined for a partial plan, which leaves the ipcache and other endpoints alone. */
  readonly ipcache?: readonly IPCacheEntry[];
  /** The allocator as it will be once the plan is committed (full plans). */
  readonly identities?: IdentityAllocator;
  readonly partial: boolean;
  /** Endpoints whose map this plan changes. */
  readonly changed: number;
  settled: boolean;
}

interface Installed {
  ep: RealizedEndpoint;
  name: string;
  identity: Identity;
  fingerprint: string;
  entries: PolicyMapEntry[];
  enforcement: { ingress: boolean; egress: boolean };
  /** The policies that put each direction into default deny (a default-deny drop's attribution). */
  defaultDenyBy: { ingress: PolicyRef[]; egress: PolicyRef[] };
  /** The map in force, kept open so a failed commit can swap it back. */
  map?: PreparedPolicy;
}

export interface EndpointManagerOptions {
  proxy?: ProxyPorts;
  /** Identities restored from the store (numbers stay as they were). */
  identities?: IdentityAllocator;
  /** Told after every commit and removal: what is in force changed (the L7 proxy's snapshot follows it). */
  onChange?: () => void;
}

export class EndpointManager {
  private readonly installed = new Map<number, Installed>();
  private readonly ipcacheSync: IPCacheSync;
  private allocator: IdentityAllocator;
  private readonly proxy: ProxyPorts;
  private ipcacheInForce: readonly IPCacheEntry[] = [];
  private readonly onChange: () => void;

  constructor(
    private readonly dp: EndpointDatapath,
    opts: EndpointManagerOptions = {},
  ) {
    this.ipcacheSync = new IPCacheSync(dp);
    this.allocator = opts.identities ?? new IdentityAllocator();
    this.proxy = opts.proxy ?? {};
    this.onChange = opts.onChange ?? (() => {});
  }

  /** The identities in force (committed). */
  get identities(): IdentityAllocator {
    return this.allocator;
  }

  /**
   * Everything the kernel must hold for this world, with every changed
   * policy map prepared. Throws (having closed what it prepared) when any
   * endpoint cannot be planned; the error names the endpoint.
   */
  plan(input: RegenerationInput): RegenerationPlan {
    const identities = this.allocator.clone();
    const labelsOf = new Map<number, LabelSet>();
    for (const e of input.endpoints) {
      labelsOf.set(e.epId, endpointIdentityLabels({ namespace: e.namespace, podLabels: e.podLabels, namespaceLabels: e.namespaceLabels, serviceAccount: e.serviceAccount }));
    }
    const virtual = input.virtualEndpoints ?? [];
    const virtualLabels = virtual.map((v) => endpointIdentityLabels({ namespace: v.namespace, podLabels: v.podLabels, namespaceLabels: v.namespaceLabels, serviceAccount: v.serviceAccount }));
    const cidrs = [...new Map([...cidrPrefixes(input.rules), ...fqdnPrefixes(input.dnsNames)].map((p) => [formatPrefix(p), p])).values()];
    const byLabels = identities.sync([...labelsOf.values(), ...virtualLabels, ...cidrs.map((p) => cidrIdentityLabels(formatPrefix(p)))]);
    const identityOf = (e: EndpointSpec) => byLabels.get(labelsOf.get(e.epId)!.toString())!;

    const ipcache = new IPCache();
    for (const p of cidrs) ipcache.upsert({ prefix: p, identity: byLabels.get(cidrIdentityLabels(formatPrefix(p)).toString())!.id, source: 'policy' });
    const virtualIPs = new Set(virtual.map((v) => v.ipv4));
    for (const ip of input.hostAddresses) {
      const p = hostPrefix(ip);
      if (p && p.family === 4 && !virtualIPs.has(ip)) ipcache.upsert({ prefix: p, identity: ReservedIdentity.host, source: 'host' });
    }
    virtual.forEach((v, i) => ipcache.upsert({ prefix: hostPrefix(v.ipv4)!, identity: byLabels.get(virtualLabels[i]!.toString())!.id, source: 'endpoint' }));
    for (const e of input.endpoints) ipcache.upsert({ prefix: hostPrefix(e.ipv4)!, identity: identityOf(e).id, endpointId: e.epId, source: 'endpoint' });

    const selection = { identities: identities.list(), ...(input.dnsNames ? { dnsNames: input.dnsNames } : {}) };
    const policies = resolveEndpoints(
      input.rules,
      selection,
      input.endpoints.map((e) => ({ key: e.epId, identity: identityOf(e), namedPorts: e.namedPorts })),
      { cache: new SelectorCache(selection) },
    );
    const plan = this.planPolicies(
      input.endpoints.map((e) => ({ ep: { ifindex: e.ifindex, epId: e.epId, ipv4: e.ipv4, identity: identityOf(e).id }, name: e.name, identity: identityOf(e), policy: policies.get(e.epId)! })),
      { partial: false },
    );
    return { ...plan, ipcache: ipcache.list(), identities, settled: false };
  }

  /**
   * Plan given policies (already resolved) for some endpoints. A partial
   * plan touches only those endpoints (tests, the live scenario runner);
   * a full one also removes every endpoint it does not name.
   */
  planPolicies(list: readonly { ep: RealizedEndpoint; name?: string; identity?: Identity; policy: EndpointPolicy }[], opts: { partial: boolean }): RegenerationPlan {
    const endpoints = new Map<number, PlannedEndpoint>();
    let changed = 0;
    try {
      for (const x of list) {
        if (endpoints.has(x.ep.epId)) throw new MembraneError('MEMBRANE_E_INTERNAL', `endpoint ${x.ep.epId} appears twice in one regeneration`);
        const writes = policyMapWrites(x.policy, this.proxy);
        const fingerprint = JSON.stringify(writes.writes);
        const planned: PlannedEndpoint = { ep: x.ep, name: x.name ?? `endpoint ${x.ep.epId}`, identity: x.identity ?? { id: x.ep.identity } as Identity, policy: x.policy, writes, fingerprint };
        const old = this.installed.get(x.ep.epId);
        if (!old || old.fingerprint !== fingerprint) {
          try {
            planned.prepared = this.dp.preparePolicy(x.ep.epId, writes.writes);
          } catch (e) {
            throw new MembraneError('MEMBRANE_E_DATAPATH', `${planned.name}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
          }
          changed++;
        }
        endpoints.set(x.ep.epId, planned);
      }
    } catch (e) {
      for (const p of endpoints.values()) if (p.prepared) this.dp.releasePolicy(p.prepared);
      throw e;
    }
    return { endpoints, partial: opts.partial, changed, settled: false };
  }

  /** Drop a plan that will not be committed (closes its prepared maps). */
  abort(plan: RegenerationPlan): void {
    if (plan.settled) return;
    plan.settled = true;
    for (const p of plan.endpoints.values()) if (p.prepared) this.dp.releasePolicy(p.prepared);
  }

  /** Put a plan in force (see the file comment for the order and the rollback). */
  commit(plan: RegenerationPlan): void {
    if (plan.settled) throw new MembraneError('MEMBRANE_E_INTERNAL', 'a regeneration plan was committed or aborted already');
    plan.settled = true;
    // New addresses resolve before any policy names them; stale ones leave last.
    const entries = plan.ipcache;
    if (entries) for (const e of entries) this.ipcacheSync.upsert(e);
    for (const p of plan.endpoints.values()) if (plan.partial) this.dp.ipcacheUpsert(`${p.ep.ipv4}/32`, p.ep.identity, p.ep.epId);

    const swapped: PlannedEndpoint[] = [];
    try {
      for (const p of plan.endpoints.values()) {
        if (!p.prepared) continue;
        this.dp.installPolicy(p.prepared);
        swapped.push(p);
      }
    } catch (e) {
      for (const p of swapped.reverse()) {
        const old = this.installed.get(p.ep.epId)?.map;
        try {
          if (old) this.dp.installPolicy(old);
          else this.dp.removePolicy(p.ep.epId);
        } catch {
          // Nothing better is left to do: the error below says what failed.
        }
      }
      for (const p of plan.endpoints.values()) if (p.prepared) this.dp.releasePolicy(p.prepared);
      throw e;
    }

    for (const p of plan.endpoints.values()) {
      const cur = this.dp.getEndpoint(p.ep.ifindex);
      // The endpoint entry forces no enforcement of its own: it all lives in the policy map.
      if (!cur || cur.ep_id !== p.ep.epId || cur.identity !== p.ep.identity || cur.ipv4 !== ipv4ToNumber(p.ep.ipv4) || cur.flags !== 0) {
        this.dp.setEndpoint(p.ep.ifindex, { ep_id: p.ep.epId, ipv4: ipv4ToNumber(p.ep.ipv4), identity: p.ep.identity, flags: 0 });
      }
      const old = this.installed.get(p.ep.epId);
      if (p.prepared && old?.map) this.dp.releasePolicy(old.map);
      const map = p.prepared ?? old?.map;
      this.installed.set(p.ep.epId, {
        ep: p.ep,
        name: p.name,
        identity: p.identity,
        fingerprint: p.fingerprint,
        entries: p.writes.entries,
        enforcement: { ingress: p.writes.ingressEnforced, egress: p.writes.egressEnforced },
        defaultDenyBy: { ingress: p.writes.ingressDefaultDeny ? [...p.policy.ingress.defaultDenyBy] : [], egress: p.writes.egressDefaultDeny ? [...p.policy.egress.defaultDenyBy] : [] },
        ...(map ? { map } : {}),
      });
    }
    if (!plan.partial) {
      for (const [epId, i] of [...this.installed]) if (!plan.endpoints.has(epId)) this.forget(i);
      if (entries) {
        this.ipcacheSync.sync(entries);
        this.ipcacheInForce = entries;
      }
      if (plan.identities) this.allocator = plan.identities;
    }
    this.onChange();
  }

  /** Take one endpoint out of the kernel (its entry, policy map and address). */
  remove(epId: number): void {
    const i = this.installed.get(epId);
    if (!i) return;
    this.forget(i);
    this.onChange();
  }

  private forget(i: Installed): void {
    this.dp.deleteEndpoint(i.ep.ifindex);
    this.dp.removePolicy(i.ep.epId);
    this.ipcacheSync.delete(`${i.ep.ipv4}/32`);
    if (i.map) this.dp.releasePolicy(i.map);
    this.installed.delete(i.ep.epId);
  }

  /** The ipcache the last full regeneration put in force. */
  ipcache(): readonly IPCacheEntry[] {
    return this.ipcacheInForce;
  }

  /** The identity an installed endpoint has. */
  identityOf(epId: number): Identity | undefined {
    return this.installed.get(epId)?.identity;
  }

  /** The policies that put an installed endpoint's direction into default deny (none when it is not). */
  defaultDenyBy(epId: number, direction: 'ingress' | 'egress'): PolicyRef[] {
    return this.installed.get(epId)?.defaultDenyBy[direction] ?? [];
  }

  enforcement(epId: number): { ingress: boolean; egress: boolean } {
    return this.installed.get(epId)?.enforcement ?? { ingress: false, egress: false };
  }

  /** Installed endpoints per identity. */
  endpointsPerIdentity(): Map<number, number> {
    const out = new Map<number, number>();
    for (const i of this.installed.values()) out.set(i.identity.id, (out.get(i.identity.id) ?? 0) + 1);
    return out;
  }

  /**
   * What an installed endpoint's policy map holds, as installed: a
   * regeneration replaces it, never changes it, so a holder keeps what was
   * in force when it asked (the observer attributes events with it).
   */
  installedPolicy(epId: number): { readonly entries: readonly PolicyMapEntry[]; readonly defaultDenyBy: { readonly ingress: readonly PolicyRef[]; readonly egress: readonly PolicyRef[] } } | undefined {
    return this.installed.get(epId);
  }

  /** The policy-map entry an event names (by its cookie). */
  entry(epId: number, cookie: number): PolicyMapEntry | undefined {
    return this.installed.get(epId)?.entries[cookie - 1];
  }

  /** The rules behind a policy-map entry an event names (by its cookie). */
  origins(epId: number, cookie: number): RuleOrigin[] {
    const e = this.installed.get(epId)?.entries[cookie - 1];
    if (!e) return [];
    return [...new Set(e.sources.flatMap((s) => s.origins))];
  }

  /** Close every map handle (the pinned maps keep enforcing). */
  close(): void {
    for (const i of this.installed.values()) if (i.map) this.dp.releasePolicy(i.map);
    this.installed.clear();
  }
}

/** The /32 of every address a toFQDNs name resolved to (IPv4: the datapath's family). */
function fqdnPrefixes(dnsNames: ReadonlyMap<string, readonly string[]> | undefined): Prefix[] {
  const out: Prefix[] = [];
  for (const ip of dnsNames?.keys() ?? []) {
    const p = hostPrefix(ip);
    if (p && p.family === 4) out.push(p);
  }
  return out;
}

/** Every prefix CIDR peers and their exceptions name (each gets a CIDR identity and an ipcache entry). */
export function cidrPrefixes(rules: readonly Rule[]): Prefix[] {
  const seen = new Map<string, Prefix>();
  for (const r of rules) {
    for (const d of [...r.ingress, ...r.egress]) {
      for (const p of d.peers) {
        if (p.kind !== 'cidr') continue;
        for (const x of [p.cidr, ...p.except]) if (x.family === 4 && x.bits > 0) seen.set(formatPrefix(x), x);
      }
    }
  }
  return [...seen.values()];
}

export { endpointFlags };
