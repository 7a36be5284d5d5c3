/**
 * The policy Preview of the console, without its UI: recent flows replayed
 * through the policy engine twice, with the policies in force and with the
 * policies as edited, listing every flow whose verdict would change and the
 * flows that cannot be judged (with the reason) rather than guessing.
 *
 * It judges exactly as `membrane policy simulate` does: the cluster state
 * becomes a Scenario (namespaces, endpoints, the flows' outside peers), the
 * documents go through parsePolicyDocument, buildWorld makes one World per
 * policy set and every flow becomes a probe for evaluateProbe.
 *
 * Runs in the browser: no Node built-ins here.
 */
import { MembraneError, ValidationError, describeDocument } from '@membrane/api';
import {
  FIRST_CLUSTER_IDENTITY,
  FIRST_LOCAL_IDENTITY,
  NAMESPACE_LABELS_PREFIX,
  POD_NAMESPACE_LABEL,
  ReservedIdentity,
  Repository,
  SERVICE_ACCOUNT_LABEL,
  SOURCE_K8S,
  buildWorld,
  evaluateProbe,
  parseIP,
  parseLabel,
  parsePolicyDocument,
  policyKey,
  protoNumber,
  type ConnectionVerdict,
  type EndpointSelector,
  type NamedPort,
  type PolicyRef,
  type ProbeResult,
  type RuleSummary,
  type Scenario,
  type ScenarioEndpoint,
  type ScenarioOutside,
  type ScenarioProbe,
  type TranslatedPolicy,
  type World,
} from '@membrane/policy';
import { flow as pb } from '@membrane/proto';

/** A namespace of the cluster and its labels (what namespaceSelectors read). */
export interface PreviewNamespace {
  name: string;
  labels: Record<string, string>;
}

/** An endpoint as the agent lists it (GET /v1/endpoints: EndpointInfo has these fields). */
export interface PreviewEndpoint {
  pod: string;
  namespace: string;
  /** Identity labels, `k8s:app=x`, including the ones the system derives (`k8s:io.kubernetes.pod.namespace=...`). */
  labels: readonly string[];
  ipv4: string;
  identity: number;
  /**
   * Its containers' named ports, when known. The agent's endpoint list does
   * not carry them: flows a rule with a named port could decide are then
   * unjudged instead of judged as if the name matched no port.
   */
  namedPorts?: readonly NamedPort[];
}

export interface ClusterState {
  namespaces: readonly PreviewNamespace[];
  endpoints: readonly PreviewEndpoint[];
}

export interface PreviewInput {
  state: ClusterState;
  /** The policies in force: documents as parsed from YAML (CNP, CCNP, NetworkPolicy). */
  current: readonly unknown[];
  /**
   * The edited documents, applied over `current` as `membrane apply` would
   * (same kind/namespace/name: replaced; otherwise added). Passing the whole
   * edited set works too; policies removed in the editor go in `deleted`.
   */
  edited: readonly unknown[];
  deleted?: readonly PolicyRef[];
  /** Oldest first; `changed` keeps this order. */
  flows: readonly pb.Flow[];
  /** How documents are named in errors (`<source>: document 2 (...)`); default `current` and `edited`. */
  sources?: { current?: string; edited?: string };
}

export type PreviewVerdict = 'allowed' | 'denied';

export interface ChangedFlow {
  uuid: string;
  flow: pb.Flow;
  /**
   * The engine's verdict under the current policies, NOT the verdict the flow
   * was recorded with: both sides of the comparison come from the same
   * engine, so a change is due to the edit alone.
   */
  before: PreviewVerdict;
  after: PreviewVerdict;
  reasonBefore: string;
  reasonAfter: string;
  rulesBefore: RuleSummary[];
  rulesAfter: RuleSummary[];
  /** The recorded verdict (FORWARDED/REDIRECTED/TRACED/TRANSLATED: allowed; DROPPED/AUDIT: denied), if any. */
  recorded?: PreviewVerdict;
  /** A hint: does `before` agree with what was recorded? (No: the state or the policies have moved, or a drop had another cause.) */
  recordedAgrees: boolean;
}

export interface UnjudgedFlow {
  uuid: string;
  flow: pb.Flow;
  reason: string;
}

export interface PreviewReport {
  changed: ChangedFlow[];
  /** Judged flows whose verdict stays the same. */
  unchanged: number;
  unjudged: UnjudgedFlow[];
  /** Reply flows (isReply): not judged, they ride on the connection's conntrack entry. */
  replies: number;
  /** Judged flows whose `before` disagrees with their recorded verdict (a hint that the state is stale). */
  disagreements: number;
}

/** One problem of one document, as the engine reports it (`membrane apply` prints `line`). */
export interface PreviewProblem {
  set: 'current' | 'edited';
  /** `edited: document 2 (CiliumNetworkPolicy default/rule1)`. */
  document: string;
  /** The field, as written: `spec.ingress[0].toPorts[0].ports[0].port` ('' for the whole document). */
  path: string;
  message: string;
  line: string;
}

export interface PreviewErrors {
  errors: PreviewProblem[];
}

export function isPreviewErrors(r: PreviewReport | PreviewErrors): r is PreviewErrors {
  return 'errors' in r;
}

/**
 * An endpoint's labels as the engine wants them given: the pod's own `k8s:`
 * labels, without those the engine derives itself (pod namespace, namespace
 * labels, service account, cluster: identity.ts endpointIdentityLabels),
 * plus the service account and namespace labels those carried.
 */
export function podLabelsOf(labels: readonly string[]): { labels: Record<string, string>; serviceAccount?: string; namespaceLabels: Record<string, string> } {
  const out: Record<string, string> = {};
  const namespaceLabels: Record<string, string> = {};
  let serviceAccount: string | undefined;
  for (const text of labels) {
    const l = parseLabel(text);
    if (l.source !== SOURCE_K8S || l.key === POD_NAMESPACE_LABEL) continue;
    if (l.key.startsWith(NAMESPACE_LABELS_PREFIX)) namespaceLabels[l.key.slice(NAMESPACE_LABELS_PREFIX.length)] = l.value;
    else if (l.key === SERVICE_ACCOUNT_LABEL) serviceAccount = l.value;
    else if (!l.key.startsWith('io.cilium.k8s.policy.')) out[l.key] = l.value;
  }
  return { labels: out, ...(serviceAccount ? { serviceAccount } : {}), namespaceLabels };
}

/** Parses and translates one policy set; problems instead of exceptions. */
export function translateDocuments(docs: readonly unknown[], set: 'current' | 'edited', source: string = set): { policies: TranslatedPolicy[]; problems: PreviewProblem[] } {
  const policies: TranslatedPolicy[] = [];
  const problems: PreviewProblem[] = [];
  const seen = new Map<string, string>();
  const add = (document: string, path: string, message: string) =>
    problems.push({ set, document, path, message, line: `${document}: ${path ? `${path}: ` : ''}${message}` });
  docs.forEach((value, i) => {
    const ref = { source, label: `document ${i + 1}` };
    try {
      const t = parsePolicyDocument(value, ref);
      const k = policyKey(t.ref);
      const name = describeDocument({ ...ref, object: `${t.ref.kind} ${t.ref.namespace ? t.ref.namespace + '/' : ''}${t.ref.name}` });
      const other = seen.get(k);
      if (other) add(name, 'metadata.name', `the same policy is already defined by ${other}`);
      else seen.set(k, ref.label);
      policies.push(t);
    } catch (e) {
      if (e instanceof ValidationError) for (const p of e.problems) add(describeDocument(e.document), p.path, p.reason);
      else if (e instanceof MembraneError) add(describeDocument(ref), '', e.message);
      else add(describeDocument(ref), '', `the engine failed on this document: ${e instanceof Error ? e.message : String(e)}`);
    }
  });
  return { policies, problems };
}

const RESERVED_BY_ID = new Map<number, string>(Object.entries(ReservedIdentity).map(([name, id]) => [id, name]));

type Place = { peer: string } | { why: string };

/** A flow made ready to judge: its probe and the key of its judgment, or why it cannot be judged. */
type Prepared = { probe: ScenarioProbe; key: string } | { why: string };

class Placer {
  readonly endpoints = new Map<string, PreviewEndpoint>();
  readonly byIP = new Map<string, string>();
  readonly outside = new Map<string, ScenarioOutside>();

  constructor(state: ClusterState) {
    for (const e of state.endpoints) {
      const k = `${e.namespace}/${e.pod}`;
      this.endpoints.set(k, e);
      if (e.ipv4) this.byIP.set(e.ipv4, k);
    }
  }

  /** A flow's peer: an endpoint of the state, an entity, or an outside address (with the names the flow gives it). */
  place(ep: pb.Endpoint | undefined, ip: string, names: readonly string[], side: string): Place {
    if (ep?.podName) {
      const k = `${ep.namespace}/${ep.podName}`;
      return this.endpoints.has(k) ? { peer: k } : { why: `the ${side} pod ${k} is not in the cluster state (deleted since?)` };
    }
    const local = ip ? this.byIP.get(ip) : undefined;
    if (local) return { peer: local };
    const id = ep?.identity ?? 0;
    const reserved = RESERVED_BY_ID.get(id);
    if (reserved && reserved !== 'world') {
      const name = `reserved:${reserved}`;
      this.outside.set(name, { name, entity: reserved });
      return { peer: name };
    }
    if (id !== 0 && id !== ReservedIdentity.world && id < FIRST_LOCAL_IDENTITY) {
      return id >= FIRST_CLUSTER_IDENTITY
        ? { why: `the ${side} ${ip || '(no address)'} has cluster identity ${id} but is no endpoint of the cluster state` }
        : { why: `the ${side} has identity ${id}, which the engine does not know` };
    }
    // World, a CIDR identity, or unknown (the ipcache's default is world): the peer is its address.
    if (!ip || !parseIP(ip)) return { why: `the ${side} is outside the cluster and the flow gives no usable address` };
    const name = `ip:${ip}`;
    let o = this.outside.get(name);
    if (!o) this.outside.set(name, (o = { name, ip }));
    for (const n of names) if (!(o.fqdns ??= []).includes(n)) o.fqdns.push(n);
    return { peer: name };
  }

  scenario(state: ClusterState, policies: TranslatedPolicy[]): Scenario {
    const namespaces: Scenario['namespaces'] = {};
    for (const n of state.namespaces) namespaces[n.name] = { labels: { ...n.labels } };
    const endpoints: ScenarioEndpoint[] = [];
    for (const e of this.endpoints.values()) {
      const p = podLabelsOf(e.labels);
      // A namespace missing from the state: its labels as its pods carry them.
      namespaces[e.namespace] ??= { labels: p.namespaceLabels };
      endpoints.push({
        name: e.pod,
        namespace: e.namespace,
        labels: p.labels,
        ...(e.ipv4 ? { ip: e.ipv4 } : {}),
        ...(p.serviceAccount ? { serviceAccount: p.serviceAccount } : {}),
        ...(e.namedPorts?.length ? { ports: [...e.namedPorts] } : {}),
      });
    }
    return { source: 'preview', name: 'preview', namespaces, endpoints, outside: [...this.outside.values()], policies, probes: [] };
  }
}

/** The flow as a probe: its peers, protocol and port, and its L7 request if it carries one. */
function prepare(f: pb.Flow, placer: Placer): Prepared {
  if (f.Type !== pb.FlowType.L3_L4 && f.Type !== pb.FlowType.L7) return { why: `a ${pb.FlowType[f.Type] ?? f.Type} event is not a policy decision` };
  const from = placer.place(f.source, f.IP?.source ?? '', f.sourceNames, 'source');
  if ('why' in from) return from;
  const to = placer.place(f.destination, f.IP?.destination ?? '', f.destinationNames, 'destination');
  if ('why' in to) return to;
  const l4 = f.l4?.protocol;
  const probe: ScenarioProbe = { index: 0, from: from.peer, to: to.peer, protocol: 'TCP' };
  if (l4?.case === 'TCP' || l4?.case === 'UDP' || l4?.case === 'SCTP') {
    if (!l4.value.destinationPort) return { why: `the flow has no ${l4.case} destination port` };
    probe.protocol = l4.case;
    probe.port = l4.value.destinationPort;
  } else if (l4?.case === 'ICMPv4') {
    probe.protocol = 'ICMP';
    probe.icmp = { type: l4.value.type, code: l4.value.code };
  } else if (l4?.case === 'ICMPv6') {
    return { why: 'ICMPv6 flows cannot be judged (the engine probes ICMPv4 only)' };
  } else {
    return { why: 'the flow has no L4 header (protocol and port)' };
  }
  const rec = f.l7?.record;
  if (rec?.case === 'http' && rec.value.method) {
    if (probe.protocol !== 'TCP') return { why: `an HTTP request over ${probe.protocol}` };
    // `http://host/path?query`: host and request target as sent (no URL normalisation).
    const m = /^[a-z][a-z0-9+.-]*:\/\/([^/]*)(.*)$/i.exec(rec.value.url);
    const headers: Record<string, string> = Object.create(null) as Record<string, string>;
    for (const h of rec.value.headers) headers[h.key] = Object.hasOwn(headers, h.key) ? `${headers[h.key]},${h.value}` : h.value;
    probe.http = { method: rec.value.method, path: (m ? m[2] : rec.value.url) || '/', headers, ...(m?.[1] ? { host: m[1] } : {}) };
  } else if (rec?.case === 'dns' && rec.value.query) {
    probe.dns = { query: rec.value.query };
  }
  const key = [probe.from, probe.to, probe.protocol, probe.port ?? `${probe.icmp?.type}/${probe.icmp?.code}`, probe.http ? JSON.stringify(probe.http) : probe.dns ? `dns ${probe.dns.query}` : ''].join('\u0000');
  return { probe, key };
}

/** What the L7 rules that a connection without a request meets make of it: a fixed verdict, or "it depends on the request". */
type L3L4Outcome = { fixed: true } | { fixed: false; signature: string; kinds: Set<string> };

function l3l4Outcome(world: World, probe: ScenarioProbe, v: ConnectionVerdict): L3L4Outcome {
  // Without a request the engine stops at L3/L4: a denial is final whatever the request would have been.
  if (!v.allowed) return { fixed: true };
  const sides = (['egress', 'ingress'] as const).filter((d) => v[d]?.proxied);
  if (sides.length === 0) return { fixed: true };
  const from = world.peers.get(probe.from)!;
  const to = world.peers.get(probe.to)!;
  const kinds = new Set<string>();
  const parts: string[] = [];
  for (const d of sides) {
    const [subject, peer] = d === 'egress' ? [from, to] : [to, from];
    const pol = world.endpointPolicies.get(subject.name) ?? world.policies.get(subject.identity.id)!;
    const rules = new Set<string>();
    for (const e of pol[d].matching(peer.identity.id, protoNumber(probe.protocol)!, probe.port!)) {
      if (e.deny || !e.l7) continue;
      for (const h of e.l7.http) rules.add(`http ${JSON.stringify([h.rule.method ?? '', h.rule.path ?? '', h.rule.host ?? '', h.rule.headers])}`);
      for (const x of e.l7.dns) rules.add(`dns ${x.matcher.text}`);
      if (e.l7.http.length) kinds.add('HTTP');
      if (e.l7.dns.length) kinds.add('DNS');
    }
    parts.push(`${d}:${[...rules].sort().join('\n')}`);
  }
  return { fixed: false, signature: parts.join('\n\n'), kinds };
}

type Judgment =
  | { kind: 'same'; before: ProbeResult }
  | { kind: 'changed'; before: ProbeResult; after: ProbeResult }
  | { kind: 'unjudged'; reason: string };

/** Rules naming ports, by the side whose named ports they read (ingress: the subject's own; egress: the peers'). */
type NamedPortGuard = Record<'ingress' | 'egress', { selector: EndpointSelector; policy: string }[]>;

function namedPortGuard(sets: TranslatedPolicy[][]): NamedPortGuard {
  const g: NamedPortGuard = { ingress: [], egress: [] };
  for (const set of sets)
    for (const p of set)
      for (const r of p.rules) {
        if (r.subject.kind !== 'endpoints') continue;
        for (const d of ['ingress', 'egress'] as const)
          if (r[d].some((x) => x.ports?.some((port) => port.name !== undefined))) g[d].push({ selector: r.subject.selector, policy: `${p.ref.kind} ${p.ref.namespace ? p.ref.namespace + '/' : ''}${p.ref.name}` });
      }
  return g;
}

function judge(probe: ScenarioProbe, before: World, after: World, guard: NamedPortGuard | undefined, portsOf: (peer: string) => readonly NamedPort[] | undefined): Judgment {
  if (guard) {
    const from = before.peers.get(probe.from)!;
    const to = before.peers.get(probe.to)!;
    // Ingress named ports are the receiver's own; egress ones the peers' (resolved cluster-wide, so any unknown list counts).
    const ing = to.kind === 'endpoint' && !portsOf(to.name) ? guard.ingress.find((x) => x.selector.matches(to.identity.labels)) : undefined;
    const eg = from.kind === 'endpoint' ? guard.egress.find((x) => x.selector.matches(from.identity.labels)) : undefined;
    if (ing) return { kind: 'unjudged', reason: `${ing.policy} names a port and the cluster state does not give the container ports of ${to.name}` };
    if (eg) return { kind: 'unjudged', reason: `${eg.policy} names a port (egress: the peers' ports) and the cluster state does not give every pod's container ports` };
  }
  const b = evaluateProbe(before, probe);
  const a = evaluateProbe(after, probe);
  if (!probe.http && !probe.dns) {
    const ob = l3l4Outcome(before, probe, b.verdict);
    const oa = l3l4Outcome(after, probe, a.verdict);
    // Decisive without the request: both verdicts final at L3/L4, or both sets send the
    // connection to the same L7 rules (then any request would meet the same verdict).
    const same = !ob.fixed && !oa.fixed && ob.signature === oa.signature;
    if (!same && (!ob.fixed || !oa.fixed)) {
      const kinds = new Set([...(ob.fixed ? [] : ob.kinds), ...(oa.fixed ? [] : oa.kinds)]);
      const what = kinds.size === 1 ? [...kinds][0]! : 'HTTP or DNS';
      const where = !ob.fixed && !oa.fixed ? 'under both policy sets, with different rules' : !ob.fixed ? 'under the current policies' : 'under the edited policies';
      return { kind: 'unjudged', reason: `L7 rules apply on ${probe.protocol}/${probe.port} and the flow carries no ${what} request (${where}: the verdict depends on the request)` };
    }
    if (same) return { kind: 'same', before: b.result };
  }
  return b.result.verdict === a.result.verdict ? { kind: 'same', before: b.result } : { kind: 'changed', before: b.result, after: a.result };
}

const RECORDED_ALLOWED = new Set([pb.Verdict.FORWARDED, pb.Verdict.REDIRECTED, pb.Verdict.TRACED, pb.Verdict.TRANSLATED]);
/** AUDIT: the policy would have dropped it (audit mode let it pass). */
const RECORDED_DENIED = new Set([pb.Verdict.DROPPED, pb.Verdict.AUDIT]);

function recordedVerdict(v: pb.Verdict): PreviewVerdict | undefined {
  return RECORDED_ALLOWED.has(v) ? 'allowed' : RECORDED_DENIED.has(v) ? 'denied' : undefined;
}

/**
 * The preview: every non-reply flow judged under the current and the edited
 * policies. Invalid documents give `{errors}` (nothing is judged); nothing
 * here throws for bad input.
 */
export function previewPolicies(input: PreviewInput): PreviewReport | PreviewErrors {
  const cur = translateDocuments(input.current, 'current', input.sources?.current);
  const ed = translateDocuments(input.edited, 'edited', input.sources?.edited);
  if (cur.problems.length || ed.problems.length) return { errors: [...cur.problems, ...ed.problems] };
  const repo = new Repository();
  repo.apply(cur.policies);
  const next = repo.clone();
  next.apply(ed.policies);
  if (input.deleted?.length) next.delete(input.deleted);

  const placer = new Placer(input.state);
  const report: PreviewReport = { changed: [], unchanged: 0, unjudged: [], replies: 0, disagreements: 0 };
  const prepared: (Prepared | undefined)[] = input.flows.map((f) => (f.isReply === true ? undefined : prepare(f, placer)));

  // One world per policy set; the outside peers of every flow are part of both.
  const before = buildWorld(placer.scenario(input.state, repo.list()));
  const after = buildWorld(placer.scenario(input.state, next.list()));
  const anyPortsUnknown = [...placer.endpoints.values()].some((e) => e.namedPorts === undefined);
  const g = namedPortGuard([repo.list(), next.list()]);
  const guard = anyPortsUnknown && (g.ingress.length || g.egress.length) ? g : undefined;
  const portsOf = (peer: string) => placer.endpoints.get(peer)?.namedPorts;

  const cache = new Map<string, Judgment>();
  input.flows.forEach((f, i) => {
    const p = prepared[i];
    if (!p) {
      report.replies++;
      return;
    }
    if ('why' in p) {
      report.unjudged.push({ uuid: f.uuid, flow: f, reason: p.why });
      return;
    }
    let j = cache.get(p.key);
    if (!j) {
      j = judge(p.probe, before, after, guard, portsOf);
      cache.set(p.key, j);
    }
    if (j.kind === 'unjudged') {
      report.unjudged.push({ uuid: f.uuid, flow: f, reason: j.reason });
      return;
    }
    const recorded = recordedVerdict(f.verdict);
    const recordedAgrees = recorded === j.before.verdict;
    if (!recordedAgrees) report.disagreements++;
    if (j.kind === 'same') {
      report.unchanged++;
      return;
    }
    report.changed.push({
      uuid: f.uuid,
      flow: f,
      before: j.before.verdict,
      after: j.after.verdict,
      reasonBefore: j.before.reason,
      reasonAfter: j.after.reason,
      rulesBefore: j.before.rules,
      rulesAfter: j.after.rules,
      ...(recorded ? { recorded } : {}),
      recordedAgrees,
    });
  });
  return report;
}
