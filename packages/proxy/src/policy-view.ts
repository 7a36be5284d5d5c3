/**
 * What the proxy knows of policy: the agent's snapshot of the policies in
 * force, the identities, the ipcache and the node's endpoints, resolved here
 * by the same engine that programs the datapath (resolveEndpoints,
 * decideDirection: one implementation, no copy). A request is allowed when
 * the sender's egress and the receiver's ingress both allow it — each side
 * judged only where it is a local endpoint, and a side whose entry carries
 * no L7 rules imposes none.
 */
import type { PolicyManifest } from '@membrane/api';
import { IPCache } from '@membrane/identity';
import {
  LabelSet,
  decideDirection,
  identityOf,
  parseLabel,
  parsePrefix,
  resolveEndpoints,
  translatePolicy,
  type DirectionVerdict,
  type EndpointPolicy,
  type HttpRequest,
  type L7Request,
  type Identity,
  type NamedPort,
  type Prefix,
  type RuleOrigin,
} from '@membrane/policy';

export interface SnapshotEndpoint {
  epId: number;
  ip: string;
  /** `namespace/name` */
  name: string;
  identity: number;
  namedPorts: NamedPort[];
}

/** What the agent hands the proxy (JSON). */
export interface ProxySnapshot {
  revision: number;
  policies: PolicyManifest[];
  identities: { id: number; labels: string[] }[];
  ipcache: { prefix: string; identity: number }[];
  endpoints: SnapshotEndpoint[];
  /** toFQDNs: the addresses names resolved to through the DNS proxy (absent: none). */
  fqdns?: { ip: string; names: string[] }[];
}

export interface RequestVerdict {
  allowed: boolean;
  /** The rules that decided (the denying side's when denied). */
  rules: RuleOrigin[];
  reason: string;
  srcIdentity: number;
  dstIdentity: number;
  src?: SnapshotEndpoint;
  dst?: SnapshotEndpoint;
  egress?: DirectionVerdict;
  ingress?: DirectionVerdict;
}

const TCP = 6;
const UDP = 17;
/** Verdicts kept per view (then the cache starts afresh). */
const VERDICT_CACHE = 10_000;

export class PolicyView {
  readonly revision: number;
  private readonly ipcache = new IPCache();
  private readonly byIP = new Map<string, SnapshotEndpoint>();
  private readonly policies: Map<string, EndpointPolicy>;
  private readonly identityOfIP = new Map<string, number>();
  /**
   * Verdicts of this snapshot by request (it never changes: a new snapshot
   * is a new view). Not kept when a rule looks at headers, whose values
   * would have to be part of the key.
   */
  private readonly verdicts: Map<string, RequestVerdict> | undefined;

  constructor(s: ProxySnapshot) {
    this.revision = s.revision;
    // CIDR identities carry their prefix (toCIDR and toFQDNs selectors read it).
    const identities: Identity[] = s.identities.map((i) => identityOf(i.id, new LabelSet(i.labels.map(parseLabel))));
    const byId = new Map(identities.map((i) => [i.id, i]));
    for (const e of s.ipcache) {
      const p = parsePrefix(e.prefix, { allowBare: true });
      if (typeof p !== 'string') this.ipcache.upsert({ prefix: p as Prefix, identity: e.identity, source: 'agent' });
    }
    const rules = s.policies.flatMap((m, i) => translatePolicy(m, { source: 'agent', label: `policy ${i + 1}` }).rules);
    for (const e of s.endpoints) this.byIP.set(e.ip, e);
    const dnsNames = new Map((s.fqdns ?? []).map((f) => [f.ip, f.names]));
    this.verdicts = /"header(s|Matches)"/.test(JSON.stringify(s.policies)) ? undefined : new Map();
    this.policies = resolveEndpoints(
      rules,
      { identities, dnsNames },
      s.endpoints.filter((e) => byId.has(e.identity)).map((e) => ({ key: e.ip, identity: byId.get(e.identity)!, namedPorts: e.namedPorts })),
    );
  }

  identityOf(ip: string): number {
    let id = this.identityOfIP.get(ip);
    if (id === undefined) {
      id = this.ipcache.lookup(ip).identity;
      this.identityOfIP.set(ip, id);
    }
    return id;
  }

  endpoint(ip: string): SnapshotEndpoint | undefined {
    return this.byIP.get(ip);
  }

  /** The verdict on one HTTP request from src to dst:port. */
  decideHttp(srcIP: string, dstIP: string, port: number, req: HttpRequest): RequestVerdict {
    if (!this.verdicts) return this.decide(srcIP, dstIP, TCP, port, { http: req });
    const key = `${srcIP}\n${dstIP}\n${port}\n${req.method}\n${req.host}\n${req.path}`;
    let v = this.verdicts.get(key);
    if (!v) {
      v = this.decide(srcIP, dstIP, TCP, port, { http: req });
      if (this.verdicts.size >= VERDICT_CACHE) this.verdicts.clear();
      this.verdicts.set(key, v);
    }
    return v;
  }

  /** The verdict on one DNS query for `name` from src to the server dst:port (egress only: DNS rules are never ingress rules). */
  decideDns(srcIP: string, dstIP: string, protocol: 'udp' | 'tcp', port: number, name: string): RequestVerdict {
    return this.decide(srcIP, dstIP, protocol === 'udp' ? UDP : TCP, port, { dns: { query: name } });
  }

  private decide(srcIP: string, dstIP: string, proto: number, port: number, req: L7Request): RequestVerdict {
    const srcIdentity = this.identityOf(srcIP);
    const dstIdentity = this.identityOf(dstIP);
    const src = this.byIP.get(srcIP);
    const dst = this.byIP.get(dstIP);
    const base = { srcIdentity, dstIdentity, ...(src ? { src } : {}), ...(dst ? { dst } : {}) };
    let egress: DirectionVerdict | undefined;
    let ingress: DirectionVerdict | undefined;
    const sp = src && this.policies.get(src.ip);
    if (sp) egress = decideDirection(sp.egress, src!.name, dstIdentity, proto, port, req);
    const dp = dst && this.policies.get(dst.ip);
    if (dp) ingress = decideDirection(dp.ingress, dst!.name, srcIdentity, proto, port, req);
    const sides = { ...(egress ? { egress } : {}), ...(ingress ? { ingress } : {}) };
    const denied = [egress, ingress].find((v) => v && !v.allowed);
    if (denied) return { ...base, ...sides, allowed: false, rules: denied.rules, reason: denied.reason };
    const rules = [...new Set([...(egress?.stage === 'l7' ? egress.rules : []), ...(ingress?.stage === 'l7' ? ingress.rules : []), ...(egress?.rules ?? []), ...(ingress?.rules ?? [])])];
    return { ...base, ...sides, allowed: true, rules, reason: [egress?.reason, ingress?.reason].filter(Boolean).join('; ') || 'no policy applies' };
  }
}
