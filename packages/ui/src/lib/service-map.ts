/**
 * The service map's aggregation: Hubble flows in, a graph of nodes and edges
 * out. Pure (no DOM, no Node built-ins), so the console runs it in the
 * browser and tests run it in Node.
 *
 * Nodes. Each side of a flow becomes one node, chosen in this order:
 *   - `host`           the endpoint has `reserved:host`;
 *   - `ns/name`        kind 'workload': a pod whose `workloads[0]` names its
 *                      controller (the Deployment `deathstar` for the pods
 *                      `deathstar-xxxx`); all its pods are one node;
 *   - `ns/pod`         kind 'pod': a pod without a workload (`tiefighter`);
 *   - `ns/identity:N`  kind 'other': namespaced, but neither of the above;
 *   - for a peer outside the cluster (no namespace, no pod):
 *     `fqdn:NAME`      the names the DNS proxy learned for that side
 *                      (`destinationNames[0]`, or `sourceNames[0]` when the
 *                      outside peer is the source);
 *     `cidr:PREFIX`    its most specific `cidr:` label;
 *     `world`          `reserved:world` (or world-ipv4/-ipv6) and nothing more;
 *     `reserved:X`     kind 'other': any other reserved label (remote-node...);
 *     `ip:ADDR`        kind 'cidr': only an address is known;
 *     `identity:N` / `unknown`  kind 'other': nothing else is known.
 * A Service is not a node of its own: traffic to a Service is drawn to the
 * workload that served it, and the Service names (`destinationService`, and
 * `sourceService` on replies) are listed on that node as `services`. A node's
 * id never changes once made; `identities` lists every identity seen for it.
 *
 * Edges. One edge per (initiator node, responder node, protocol, port), the
 * port being the responder's. A reply (`isReply === true`, or an L7 RESPONSE)
 * is counted on the edge of the connection it answers, so a TCP exchange makes
 * one edge and not two. Every flow counts in `forwarded` (FORWARDED,
 * REDIRECTED), `dropped` (DROPPED) or `other` (anything else); `hasDrops` is
 * `dropped > 0`. HTTP flows add `http`: `requests` (REQUEST flows), `denied`
 * (requests whose verdict is DROPPED: refused by L7 policy), `errors` (5xx
 * responses), `errorShare` ((errors + denied) / requests, at most 1),
 * `p50Ms`/`p99Ms` (nearest-rank percentiles of RESPONSE latencies, over the
 * last `latencySamples` responses, 1,024 by default) and `ratePerSec`
 * (requests over the span from the edge's first HTTP flow to its last, at
 * least one second).
 *
 * Use. `ServiceMap.add(flow)` is O(1) amortised, for live streams;
 * `snapshot({ namespaces })` builds plain objects for rendering. With chosen
 * namespaces a node is kept when it is in one of them, or when it is
 * non-namespaced and has an edge to a node in one of them; an edge is kept
 * when both its ends are and one is in a chosen namespace. No namespaces (or
 * an empty list) means all. Nodes are sorted by group (namespaces in
 * alphabetical order, the non-namespaced group '' last), then kind, label and
 * id; edges by source, target, protocol and port; `groups` follows the node
 * order. The order depends only on what was seen, never on arrival order, so
 * the layout does not jump as flows arrive.
 *
 * `flowsMatchingSelection(selection, flow)` tells whether a flow belongs to a
 * clicked node, edge or namespace group, with the same classification.
 */
import { flow as pb } from '@membrane/proto';

export type NodeKind = 'workload' | 'pod' | 'world' | 'host' | 'fqdn' | 'cidr' | 'other';

/** Where one side of a flow lands on the map. */
export interface NodeRef {
  id: string;
  kind: NodeKind;
  label: string; // the name to display
  namespace: string; // '' for what is not namespaced (world, host, fqdn, cidr...)
}

export interface MapNode extends NodeRef {
  /** Security identities seen for this node, ascending. */
  identities: number[];
  /** Services whose traffic this node served or answered, sorted. */
  services: string[];
}

export interface HttpStats {
  requests: number;
  errors: number; // 5xx responses
  denied: number; // requests dropped (denied by L7 policy)
  errorShare: number; // (errors + denied) / requests, between 0 and 1
  /** Latency percentiles of the sampled responses, ms; null without samples. */
  p50Ms: number | null;
  p99Ms: number | null;
  ratePerSec: number;
}

export interface MapEdge {
  /** `SOURCE -> TARGET PORT/PROTOCOL`; stable for the edge's life. */
  id: string;
  source: string; // the initiator's node id
  target: string; // the responder's node id
  protocol: string; // the l4 case ('TCP', 'UDP', 'ICMPv4', ...), '' without l4
  port: number; // the responder's port; 0 for ICMP or without l4
  flows: number;
  forwarded: number;
  dropped: number;
  other: number;
  hasDrops: boolean;
  /** Time of the newest flow, ms since the epoch; 0 if none had a time. */
  lastSeenMs: number;
  http: HttpStats | null;
}

export interface MapGroup {
  namespace: string;
  nodeIds: string[];
}

export interface MapSnapshot {
  nodes: MapNode[];
  edges: MapEdge[];
  groups: MapGroup[];
}

export interface SnapshotOptions {
  /** Namespaces to show; undefined or empty: all. */
  namespaces?: readonly string[];
}

export interface ServiceMapOptions {
  /** Latencies kept per edge for the percentiles (the newest ones). */
  latencySamples?: number;
}

/** A flow placed on the map: its edge, in the direction of the connection. */
export interface ClassifiedFlow {
  source: NodeRef;
  target: NodeRef;
  protocol: string;
  port: number;
  reply: boolean; // the flow travelled target to source
  edgeId: string;
}

/** What the user clicked; null selects everything. */
export type MapSelection =
  | { kind: 'node'; id: string }
  | { kind: 'edge'; id: string }
  | { kind: 'namespace'; namespace: string }
  | null;

interface Side extends NodeRef {
  identity: number;
  service: string;
}

const KIND_RANK: Record<NodeKind, number> = { workload: 0, pod: 1, host: 2, world: 3, fqdn: 4, cidr: 5, other: 6 };

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The most specific `cidr:` label (longest prefix), or ''. */
function bestCidr(labels: readonly string[]): string {
  let best = '';
  let bestLen = -1;
  for (const l of labels) {
    if (!l.startsWith('cidr:')) continue;
    const cidr = l.slice(5);
    const slash = cidr.lastIndexOf('/');
    const len = slash < 0 ? 128 : Number(cidr.slice(slash + 1)) || 0;
    if (len > bestLen || (len === bestLen && cidr < best)) [best, bestLen] = [cidr, len];
  }
  return best;
}

function side(ep: pb.Endpoint | undefined, names: readonly string[], ip: string, svc: pb.Service | undefined): Side {
  const identity = ep?.identity ?? 0;
  const ns = ep?.namespace ?? '';
  const pod = ep?.podName ?? '';
  const labels = ep?.labels ?? [];
  const make = (id: string, kind: NodeKind, label: string, namespace = ''): Side => {
    let service = '';
    if (namespace !== '' && svc && svc.name !== '') service = svc.namespace && svc.namespace !== namespace ? `${svc.namespace}/${svc.name}` : svc.name;
    return { id, kind, label, namespace, identity, service };
  };
  if (labels.includes('reserved:host')) return make('host', 'host', 'host');
  if (ns !== '' || pod !== '') {
    const w = ep?.workloads[0];
    if (w && w.name !== '') return make(`${ns}/${w.name}`, 'workload', w.name, ns);
    if (pod !== '') return make(`${ns}/${pod}`, 'pod', pod, ns);
    const app = labels.find((l) => l.startsWith('k8s:app='));
    return make(`${ns}/identity:${identity}`, 'other', app ? app.slice(8) : `identity ${identity}`, ns);
  }
  if (names.length > 0 && names[0] !== '') return make(`fqdn:${names[0]}`, 'fqdn', names[0]);
  const cidr = bestCidr(labels);
  if (cidr !== '') return make(`cidr:${cidr}`, 'cidr', cidr);
  let reserved = '';
  for (const l of labels) {
    if (l === 'reserved:world' || l === 'reserved:world-ipv4' || l === 'reserved:world-ipv6') return make('world', 'world', 'world');
    if (reserved === '' && l.startsWith('reserved:')) reserved = l.slice(9);
  }
  if (reserved !== '') return make(`reserved:${reserved}`, 'other', reserved);
  if (ip !== '') return make(`ip:${ip}`, 'cidr', ip);
  if (identity !== 0) return make(`identity:${identity}`, 'other', `identity ${identity}`);
  return make('unknown', 'other', 'unknown');
}

function isReplyFlow(f: pb.Flow): boolean {
  return f.isReply === true || (f.Type === pb.FlowType.L7 && f.l7?.type === pb.L7FlowType.RESPONSE);
}

function edgeId(source: string, target: string, port: number, protocol: string): string {
  return `${source} -> ${target} ${port}/${protocol}`;
}

function classify(f: pb.Flow): { source: Side; target: Side; protocol: string; port: number; reply: boolean; edgeId: string } {
  const src = side(f.source, f.sourceNames, f.IP?.source ?? '', f.sourceService);
  const dst = side(f.destination, f.destinationNames, f.IP?.destination ?? '', f.destinationService);
  const reply = isReplyFlow(f);
  const p = f.l4?.protocol;
  const protocol = p?.case ?? '';
  let port = 0;
  if (p && (p.case === 'TCP' || p.case === 'UDP' || p.case === 'SCTP')) port = reply ? p.value.sourcePort : p.value.destinationPort;
  const [source, target] = reply ? [dst, src] : [src, dst];
  return { source, target, protocol, port, reply, edgeId: edgeId(source.id, target.id, port, protocol) };
}

/** Places one flow on the map (the classification `ServiceMap.add` uses). */
export function classifyFlow(f: pb.Flow): ClassifiedFlow {
  const c = classify(f);
  const ref = (s: Side): NodeRef => ({ id: s.id, kind: s.kind, label: s.label, namespace: s.namespace });
  return { ...c, source: ref(c.source), target: ref(c.target) };
}

/** Whether a flow belongs to the clicked node, edge or namespace group. */
export function flowsMatchingSelection(selection: MapSelection, f: pb.Flow): boolean {
  if (selection === null) return true;
  const c = classify(f);
  switch (selection.kind) {
    case 'node': return c.source.id === selection.id || c.target.id === selection.id;
    case 'edge': return c.edgeId === selection.id;
    case 'namespace': return c.source.namespace === selection.namespace || c.target.namespace === selection.namespace;
  }
}

function timeMs(f: pb.Flow): number {
  const t = f.time;
  return t ? Number(t.seconds) * 1000 + t.nanos / 1e6 : 0;
}

interface NodeState extends NodeRef {
  identities: Set<number>;
  services: Set<string>;
}

interface HttpState {
  requests: number; errors: number; denied: number;
  /** A ring of the newest latencies in ms; allocated on the first one. */
  lat: Float64Array | null;
  latCount: number;
  latNext: number;
  firstMs: number;
  lastMs: number;
}

interface EdgeState extends Omit<MapEdge, 'hasDrops' | 'http'> {
  http: HttpState | null;
}

/** Nearest-rank percentile of sorted values. */
function percentile(sorted: Float64Array, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))];
}

function httpStats(h: HttpState): HttpStats {
  let p50Ms: number | null = null;
  let p99Ms: number | null = null;
  if (h.lat && h.latCount > 0) {
    const sorted = h.lat.slice(0, h.latCount).sort();
    p50Ms = percentile(sorted, 0.5);
    p99Ms = percentile(sorted, 0.99);
  }
  const spanS = h.firstMs > 0 ? (h.lastMs - h.firstMs) / 1000 : 0;
  return {
    requests: h.requests,
    errors: h.errors,
    denied: h.denied,
    errorShare: h.requests > 0 ? Math.min(1, (h.errors + h.denied) / h.requests) : 0,
    p50Ms,
    p99Ms,
    ratePerSec: h.requests / Math.max(1, spanS),
  };
}

/** The incremental aggregator behind the service map. */
export class ServiceMap {
  private readonly nodes = new Map<string, NodeState>();
  private readonly edges = new Map<string, EdgeState>();
  private readonly latencySamples: number;
  private changes = 0;

  constructor(opts: ServiceMapOptions = {}) {
    this.latencySamples = Math.max(1, Math.floor(opts.latencySamples ?? 1024));
  }

  /** Bumped by every add and clear: re-render only when it moved. */
  get version(): number {
    return this.changes;
  }

  clear(): void {
    this.nodes.clear();
    this.edges.clear();
    this.changes++;
  }

  addAll(flows: Iterable<pb.Flow>): void {
    for (const f of flows) this.add(f);
  }

  add(f: pb.Flow): void {
    this.changes++;
    const c = classify(f);
    this.touchNode(c.source);
    this.touchNode(c.target);
    let e = this.edges.get(c.edgeId);
    if (!e) {
      e = { id: c.edgeId, source: c.source.id, target: c.target.id, protocol: c.protocol, port: c.port, flows: 0, forwarded: 0, dropped: 0, other: 0, lastSeenMs: 0, http: null };
      this.edges.set(c.edgeId, e);
    }
    e.flows++;
    if (f.verdict === pb.Verdict.FORWARDED || f.verdict === pb.Verdict.REDIRECTED) e.forwarded++;
    else if (f.verdict === pb.Verdict.DROPPED) e.dropped++;
    else e.other++;
    const t = timeMs(f);
    if (t > e.lastSeenMs) e.lastSeenMs = t;
    const l7 = f.l7;
    if (f.Type !== pb.FlowType.L7 || !l7 || l7.record.case !== 'http') return;
    const h = (e.http ??= { requests: 0, errors: 0, denied: 0, lat: null, latCount: 0, latNext: 0, firstMs: 0, lastMs: 0 });
    if (t > 0) {
      if (h.firstMs === 0 || t < h.firstMs) h.firstMs = t;
      if (t > h.lastMs) h.lastMs = t;
    }
    if (l7.type === pb.L7FlowType.REQUEST) {
      h.requests++;
      if (f.verdict === pb.Verdict.DROPPED) h.denied++;
    } else if (l7.type === pb.L7FlowType.RESPONSE) {
      if (l7.record.value.code >= 500) h.errors++;
      if (l7.latencyNs > 0n) {
        const lat = (h.lat ??= new Float64Array(this.latencySamples));
        lat[h.latNext] = Number(l7.latencyNs) / 1e6;
        h.latNext = (h.latNext + 1) % lat.length;
        if (h.latCount < lat.length) h.latCount++;
      }
    }
  }

  private touchNode(s: Side): void {
    let n = this.nodes.get(s.id);
    if (!n) {
      n = { id: s.id, kind: s.kind, label: s.label, namespace: s.namespace, identities: new Set(), services: new Set() };
      this.nodes.set(s.id, n);
    }
    if (s.identity !== 0) n.identities.add(s.identity);
    if (s.service !== '') n.services.add(s.service);
  }

  snapshot(opts: SnapshotOptions = {}): MapSnapshot {
    const chosen = opts.namespaces && opts.namespaces.length > 0 ? new Set(opts.namespaces) : null;
    let keptNodes: NodeState[] = [...this.nodes.values()];
    let keptEdges: EdgeState[] = [...this.edges.values()];
    if (chosen) {
      const inNs = new Set<string>();
      for (const n of keptNodes) if (n.namespace !== '' && chosen.has(n.namespace)) inNs.add(n.id);
      const keep = new Set(inNs);
      const outside = (id: string) => this.nodes.get(id)?.namespace === '';
      for (const e of keptEdges) {
        if (inNs.has(e.source) && outside(e.target)) keep.add(e.target);
        if (inNs.has(e.target) && outside(e.source)) keep.add(e.source);
      }
      keptNodes = keptNodes.filter((n) => keep.has(n.id));
      keptEdges = keptEdges.filter((e) => keep.has(e.source) && keep.has(e.target) && (inNs.has(e.source) || inNs.has(e.target)));
    }
    keptNodes.sort((a, b) =>
      (a.namespace === '' ? 1 : 0) - (b.namespace === '' ? 1 : 0) || cmp(a.namespace, b.namespace) ||
      KIND_RANK[a.kind] - KIND_RANK[b.kind] || cmp(a.label, b.label) || cmp(a.id, b.id));
    keptEdges.sort((a, b) => cmp(a.source, b.source) || cmp(a.target, b.target) || cmp(a.protocol, b.protocol) || a.port - b.port);
    const groups: MapGroup[] = [];
    for (const n of keptNodes) {
      const last = groups[groups.length - 1];
      if (last && last.namespace === n.namespace) last.nodeIds.push(n.id);
      else groups.push({ namespace: n.namespace, nodeIds: [n.id] });
    }
    return {
      nodes: keptNodes.map((n) => ({
        id: n.id, kind: n.kind, label: n.label, namespace: n.namespace,
        identities: [...n.identities].sort((a, b) => a - b),
        services: [...n.services].sort(cmp),
      })),
      edges: keptEdges.map((e) => ({
        id: e.id, source: e.source, target: e.target, protocol: e.protocol, port: e.port,
        flows: e.flows, forwarded: e.forwarded, dropped: e.dropped, other: e.other,
        hasDrops: e.dropped > 0, lastSeenMs: e.lastSeenMs, http: e.http ? httpStats(e.http) : null,
      })),
      groups,
    };
  }
}
