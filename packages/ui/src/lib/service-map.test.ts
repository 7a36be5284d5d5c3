import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { create } from '@bufbuild/protobuf';
import { flow as pb } from '@membrane/proto';
import { ServiceMap, classifyFlow, flowsMatchingSelection, type MapEdge, type MapSnapshot } from './service-map.js';

// The Star Wars demo: namespace default, the Deployment deathstar (two pods),
// the pods tiefighter and xwing; kube-dns in kube-system.
interface Ep { ns?: string; pod?: string; workload?: string; identity?: number; labels?: string[]; ip: string }
const deathstar1: Ep = { ns: 'default', pod: 'deathstar-39r3y', workload: 'deathstar', identity: 1001, labels: ['k8s:class=deathstar', 'k8s:org=empire'], ip: '10.200.0.4' };
const deathstar2: Ep = { ...deathstar1, pod: 'deathstar-ni3e5', ip: '10.200.0.5' };
const tiefighter: Ep = { ns: 'default', pod: 'tiefighter', identity: 1002, labels: ['k8s:class=tiefighter', 'k8s:org=empire'], ip: '10.200.0.6' };
const xwing: Ep = { ns: 'default', pod: 'xwing', identity: 1003, labels: ['k8s:class=xwing', 'k8s:org=alliance'], ip: '10.200.0.7' };
const coredns: Ep = { ns: 'kube-system', pod: 'coredns-abcde', workload: 'coredns', identity: 1100, ip: '10.200.255.254' };
const world: Ep = { identity: 2, labels: ['reserved:world'], ip: '140.82.112.3' };
const host: Ep = { identity: 1, labels: ['reserved:host'], ip: '10.200.0.1' };

function endpoint(e: Ep) {
  return {
    identity: e.identity ?? 0, namespace: e.ns ?? '', podName: e.pod ?? '', labels: e.labels ?? [],
    workloads: e.workload ? [{ name: e.workload, kind: 'Deployment' }] : [],
  };
}

interface FlowOpts {
  verdict?: pb.Verdict;
  reply?: boolean;
  proto?: 'TCP' | 'UDP' | 'ICMPv4';
  t?: number; // seconds
  srcNames?: string[];
  dstNames?: string[];
  dstService?: string;
  srcService?: string;
  l7?: { type: pb.L7FlowType; code?: number; method?: string; latencyMs?: number };
}

function mk(src: Ep, sport: number, dst: Ep, dport: number, o: FlowOpts = {}): pb.Flow {
  const proto = o.proto ?? 'TCP';
  const ports = { sourcePort: sport, destinationPort: dport };
  const l4 = proto === 'ICMPv4' ? { protocol: { case: 'ICMPv4' as const, value: { type: 8 } } }
    : proto === 'UDP' ? { protocol: { case: 'UDP' as const, value: ports } }
    : { protocol: { case: 'TCP' as const, value: ports } };
  const t = o.t ?? 1_700_000_000;
  return create(pb.FlowSchema, {
    time: { seconds: BigInt(Math.floor(t)), nanos: Math.round((t % 1) * 1e9) },
    verdict: o.verdict ?? pb.Verdict.FORWARDED,
    IP: { source: src.ip, destination: dst.ip, ipVersion: pb.IPVersion.IPv4 },
    l4,
    source: endpoint(src),
    destination: endpoint(dst),
    Type: o.l7 ? pb.FlowType.L7 : pb.FlowType.L3_L4,
    isReply: o.reply,
    sourceNames: o.srcNames ?? [],
    destinationNames: o.dstNames ?? [],
    destinationService: o.dstService ? { name: o.dstService, namespace: 'default' } : undefined,
    sourceService: o.srcService ? { name: o.srcService, namespace: 'default' } : undefined,
    l7: o.l7 ? {
      type: o.l7.type,
      latencyNs: BigInt(Math.round((o.l7.latencyMs ?? 0) * 1e6)),
      record: { case: 'http', value: { code: o.l7.code ?? 0, method: o.l7.method ?? 'POST', url: 'http://deathstar.default.svc.cluster.local/v1/request-landing' } },
    } : undefined,
  });
}

const edge = (s: MapSnapshot, source: string, target: string): MapEdge[] => s.edges.filter((e) => e.source === source && e.target === target);

test('xwing to deathstar: dropped SYNs make one edge with drops, drawn to the workload', () => {
  const m = new ServiceMap();
  m.add(mk(xwing, 40001, deathstar1, 80, { verdict: pb.Verdict.DROPPED, dstService: 'deathstar' }));
  m.add(mk(xwing, 40001, deathstar1, 80, { verdict: pb.Verdict.DROPPED, dstService: 'deathstar' }));
  m.add(mk(xwing, 40002, deathstar2, 80, { verdict: pb.Verdict.DROPPED, dstService: 'deathstar' }));
  const s = m.snapshot();
  assert.equal(s.edges.length, 1);
  const [e] = s.edges;
  assert.equal(e.id, 'default/xwing -> default/deathstar 80/TCP');
  assert.deepEqual([e.flows, e.forwarded, e.dropped, e.other, e.hasDrops], [3, 0, 3, 0, true]);
  assert.equal(e.http, null);
  const ds = s.nodes.find((n) => n.id === 'default/deathstar');
  assert.deepEqual(ds, { id: 'default/deathstar', kind: 'workload', label: 'deathstar', namespace: 'default', identities: [1001], services: ['deathstar'] });
  const xw = s.nodes.find((n) => n.id === 'default/xwing');
  assert.deepEqual(xw, { id: 'default/xwing', kind: 'pod', label: 'xwing', namespace: 'default', identities: [1003], services: [] });
});

test('tiefighter to deathstar: a forwarded exchange and its replies make ONE edge', () => {
  const m = new ServiceMap();
  m.add(mk(tiefighter, 45678, deathstar1, 80, { reply: false, dstService: 'deathstar' })); // SYN
  m.add(mk(deathstar1, 80, tiefighter, 45678, { reply: true, srcService: 'deathstar' })); // SYN-ACK
  m.add(mk(tiefighter, 45678, deathstar1, 80, { reply: false })); // ACK
  m.add(mk(deathstar1, 80, tiefighter, 45678, { reply: true })); // FIN
  m.add(mk(tiefighter, 45678, deathstar1, 80, { verdict: pb.Verdict.AUDIT })); // isReply unknown: flow direction
  const s = m.snapshot();
  assert.equal(s.edges.length, 1, JSON.stringify(s.edges.map((e) => e.id)));
  const [e] = s.edges;
  assert.equal(e.source, 'default/tiefighter');
  assert.equal(e.target, 'default/deathstar');
  assert.equal(e.port, 80);
  assert.deepEqual([e.flows, e.forwarded, e.dropped, e.other, e.hasDrops], [5, 4, 0, 1, false]);
  assert.deepEqual(edge(s, 'default/deathstar', 'default/tiefighter'), []);
  // A reply without the flag is drawn the way it travelled (nothing to go on).
  m.add(mk(deathstar1, 80, tiefighter, 45678, {}));
  assert.equal(m.snapshot().edges.length, 2);
});

test('REDIRECTED counts as forwarded, ERROR as other; protocols and ports split edges', () => {
  const m = new ServiceMap();
  m.add(mk(tiefighter, 1, deathstar1, 80, { verdict: pb.Verdict.REDIRECTED }));
  m.add(mk(tiefighter, 1, deathstar1, 80, { verdict: pb.Verdict.ERROR }));
  m.add(mk(tiefighter, 1, deathstar1, 8080));
  m.add(mk(tiefighter, 1, deathstar1, 80, { proto: 'UDP' }));
  m.add(mk(tiefighter, 0, deathstar1, 0, { proto: 'ICMPv4' }));
  const ids = m.snapshot().edges.map((e) => `${e.id} ${e.forwarded}/${e.dropped}/${e.other}`);
  assert.deepEqual(ids, [
    'default/tiefighter -> default/deathstar 0/ICMPv4 1/0/0',
    'default/tiefighter -> default/deathstar 80/TCP 1/0/1',
    'default/tiefighter -> default/deathstar 8080/TCP 1/0/0',
    'default/tiefighter -> default/deathstar 80/UDP 1/0/0',
  ]);
});

test('HTTP: requests, 5xx errors, denied, p50/p99 and rate on the L4 edge', () => {
  const m = new ServiceMap();
  const t0 = 1_700_000_000;
  m.add(mk(tiefighter, 45678, deathstar1, 80, { t: t0 })); // the L4 flow
  for (let i = 0; i < 10; i++) {
    const t = t0 + i * 0.4; // 10 requests over 3.6 s
    m.add(mk(tiefighter, 45678, deathstar1, 80, { t, verdict: pb.Verdict.FORWARDED, l7: { type: pb.L7FlowType.REQUEST } }));
    m.add(mk(deathstar1, 80, tiefighter, 45678, { t: t + 0.01, reply: true, l7: { type: pb.L7FlowType.RESPONSE, code: i < 8 ? 200 : 503, latencyMs: i + 1 } }));
  }
  // Two requests denied by L7 policy (PUT /v1/exhaust-port), at t0 + 3.8 and 4.0.
  m.add(mk(deathstar1, 80, tiefighter, 45678, { t: t0 + 3.7, reply: true, l7: { type: pb.L7FlowType.RESPONSE, code: 404 } })); // 4xx: no error
  for (const dt of [3.8, 4.0]) m.add(mk(tiefighter, 45679, deathstar2, 80, { t: t0 + dt, verdict: pb.Verdict.DROPPED, l7: { type: pb.L7FlowType.REQUEST, method: 'PUT' } }));
  const s = m.snapshot();
  assert.equal(s.edges.length, 1);
  const [e] = s.edges;
  assert.ok(e.http);
  assert.equal(e.http.requests, 12);
  assert.equal(e.http.errors, 2);
  assert.equal(e.http.denied, 2);
  assert.equal(e.http.errorShare, 4 / 12);
  assert.equal(e.http.p50Ms, 5);
  assert.equal(e.http.p99Ms, 10);
  assert.ok(Math.abs(e.http.ratePerSec - 12 / 4) < 1e-6, String(e.http.ratePerSec));
  assert.equal(e.dropped, 2);
  assert.equal(e.hasDrops, true);
  assert.equal(e.lastSeenMs, (t0 + 4) * 1000);
});

test('HTTP rate uses at least one second; latencies are a bounded reservoir of the newest', () => {
  const m = new ServiceMap();
  m.add(mk(tiefighter, 1, deathstar1, 80, { l7: { type: pb.L7FlowType.REQUEST } }));
  assert.equal(m.snapshot().edges[0].http?.ratePerSec, 1);
  assert.equal(m.snapshot().edges[0].http?.p50Ms, null);
  for (let i = 1; i <= 2000; i++) m.add(mk(deathstar1, 80, tiefighter, 1, { reply: true, l7: { type: pb.L7FlowType.RESPONSE, code: 200, latencyMs: i } }));
  const h = m.snapshot().edges[0].http;
  // The newest 1,024 are 977..2000 ms: the 512th of them is 1488, the 1014th 1990.
  assert.equal(h?.p50Ms, 1488);
  assert.equal(h?.p99Ms, 1990);
  const small = new ServiceMap({ latencySamples: 4 });
  for (const ms of [100, 1, 2, 3, 4]) small.add(mk(deathstar1, 80, tiefighter, 1, { reply: true, l7: { type: pb.L7FlowType.RESPONSE, code: 200, latencyMs: ms } }));
  assert.equal(small.snapshot().edges[0].http?.p99Ms, 4);
});

test('outside peers: FQDN (both directions), CIDR, world, host and a bare IP', () => {
  const m = new ServiceMap();
  m.add(mk(xwing, 50000, world, 443, { dstNames: ['api.github.com', 'github.com'] }));
  m.add(mk(world, 443, xwing, 50000, { reply: true, srcNames: ['api.github.com'] }));
  m.add(mk(xwing, 50001, { ...world, ip: '1.1.1.1' }, 443));
  m.add(mk(xwing, 50002, { identity: 16777217, labels: ['cidr:203.0.0.0/16', 'cidr:203.0.113.0/24', 'reserved:world'], ip: '203.0.113.9' }, 443));
  m.add(mk(host, 33000, deathstar1, 80));
  m.add(mk(xwing, 50003, { ip: '192.0.2.7' }, 22));
  const s = m.snapshot();
  const outside = s.nodes.filter((n) => n.namespace === '').map((n) => [n.id, n.kind, n.label]);
  assert.deepEqual(outside, [
    ['host', 'host', 'host'],
    ['world', 'world', 'world'],
    ['fqdn:api.github.com', 'fqdn', 'api.github.com'],
    ['ip:192.0.2.7', 'cidr', '192.0.2.7'],
    ['cidr:203.0.113.0/24', 'cidr', '203.0.113.0/24'],
  ]);
  const gh = edge(s, 'default/xwing', 'fqdn:api.github.com');
  assert.equal(gh.length, 1);
  assert.equal(gh[0].flows, 2);
  assert.deepEqual(edge(s, 'fqdn:api.github.com', 'default/xwing'), []);
  assert.deepEqual(s.nodes.find((n) => n.id === 'world')?.identities, [2]);
  assert.deepEqual(s.groups.map((g) => g.namespace), ['default', '']);
});

function starwarsAcrossNamespaces(m: ServiceMap): void {
  m.add(mk(tiefighter, 45678, deathstar1, 80));
  m.add(mk(xwing, 40001, deathstar1, 80, { verdict: pb.Verdict.DROPPED }));
  m.add(mk(xwing, 53000, coredns, 53, { proto: 'UDP' }));
  m.add(mk(xwing, 50000, world, 443, { dstNames: ['api.github.com'] }));
  m.add(mk(host, 33000, coredns, 53, { proto: 'UDP' }));
  m.add(mk(coredns, 40000, world, 53, { proto: 'UDP' }));
  m.add(mk(host, 40000, world, 443)); // between two outside peers
}

test('namespace filter keeps chosen namespaces and the outside peers linked to them', () => {
  const m = new ServiceMap();
  starwarsAcrossNamespaces(m);
  const all = m.snapshot();
  assert.deepEqual(all.groups, [
    { namespace: 'default', nodeIds: ['default/deathstar', 'default/tiefighter', 'default/xwing'] },
    { namespace: 'kube-system', nodeIds: ['kube-system/coredns'] },
    { namespace: '', nodeIds: ['host', 'world', 'fqdn:api.github.com'] },
  ]);
  assert.equal(all.edges.length, 7);
  assert.deepEqual(m.snapshot({ namespaces: [] }), all);

  const def = m.snapshot({ namespaces: ['default'] });
  assert.deepEqual(def.groups, [
    { namespace: 'default', nodeIds: ['default/deathstar', 'default/tiefighter', 'default/xwing'] },
    { namespace: '', nodeIds: ['fqdn:api.github.com'] },
  ]);
  assert.deepEqual(def.edges.map((e) => e.id), [
    'default/tiefighter -> default/deathstar 80/TCP',
    'default/xwing -> default/deathstar 80/TCP',
    'default/xwing -> fqdn:api.github.com 443/TCP',
  ]);

  const ks = m.snapshot({ namespaces: ['kube-system'] });
  assert.deepEqual(ks.nodes.map((n) => n.id), ['kube-system/coredns', 'host', 'world']);
  // host and world are both shown, but their own edge is about no chosen namespace.
  assert.deepEqual(ks.edges.map((e) => e.id), ['host -> kube-system/coredns 53/UDP', 'kube-system/coredns -> world 53/UDP']);

  const both = m.snapshot({ namespaces: ['kube-system', 'default'] });
  assert.equal(both.edges.length, 6);
  assert.ok(!both.edges.some((e) => e.id === 'host -> world 443/TCP'));
  assert.ok(both.edges.some((e) => e.id === 'default/xwing -> kube-system/coredns 53/UDP'));
  assert.deepEqual(m.snapshot({ namespaces: ['empire'] }), { nodes: [], edges: [], groups: [] });
});

test('order is stable: deterministic, independent of arrival order, and kept as flows arrive', () => {
  const flows: pb.Flow[] = [];
  starwarsAcrossNamespaces({ add: (f: pb.Flow) => void flows.push(f) } as unknown as ServiceMap);
  const a = new ServiceMap();
  const b = new ServiceMap();
  a.addAll(flows);
  b.addAll([...flows].reverse());
  const sa = a.snapshot();
  const sb = b.snapshot();
  assert.deepEqual(sa.nodes.map((n) => n.id), sb.nodes.map((n) => n.id));
  assert.deepEqual(sa.edges.map((e) => e.id), sb.edges.map((e) => e.id));

  const before = sa.nodes.map((n) => n.id);
  const beforeEdges = sa.edges.map((e) => e.id);
  const v = a.version;
  a.addAll(flows); // more of the same: nothing moves
  assert.ok(a.version > v);
  assert.deepEqual(a.snapshot().nodes.map((n) => n.id), before);
  assert.deepEqual(a.snapshot().edges.map((e) => e.id), beforeEdges);
  // New nodes slot in; the old ones keep their ids and relative order.
  a.add(mk({ ns: 'default', pod: 'aaa-probe', ip: '10.200.0.9' }, 1, deathstar1, 80));
  a.add(mk(xwing, 1, { ...world, ip: '8.8.8.8' }, 443, { dstNames: ['dns.google'] }));
  const after = a.snapshot();
  assert.equal(after.nodes.length, before.length + 2);
  assert.deepEqual(after.nodes.map((n) => n.id).filter((id) => before.includes(id)), before);
  assert.deepEqual(after.edges.map((e) => e.id).filter((id) => beforeEdges.includes(id)), beforeEdges);
});

test('flowsMatchingSelection: a clicked node, edge or namespace filters the flow table', () => {
  const m = new ServiceMap();
  const syn = mk(tiefighter, 45678, deathstar1, 80);
  const synAck = mk(deathstar2, 80, tiefighter, 45678, { reply: true });
  const drop = mk(xwing, 40001, deathstar1, 80, { verdict: pb.Verdict.DROPPED });
  const dns = mk(xwing, 53000, coredns, 53, { proto: 'UDP' });
  m.addAll([syn, synAck, drop, dns]);
  const s = m.snapshot();
  const tie = s.edges.find((e) => e.source === 'default/tiefighter');
  assert.ok(tie);
  const flows = [syn, synAck, drop, dns];
  const pick = (sel: Parameters<typeof flowsMatchingSelection>[0]) => flows.map((f) => flowsMatchingSelection(sel, f));
  assert.deepEqual(pick({ kind: 'edge', id: tie.id }), [true, true, false, false]);
  assert.deepEqual(pick({ kind: 'node', id: 'default/deathstar' }), [true, true, true, false]);
  assert.deepEqual(pick({ kind: 'node', id: 'default/xwing' }), [false, false, true, true]);
  assert.deepEqual(pick({ kind: 'namespace', namespace: 'kube-system' }), [false, false, false, true]);
  assert.deepEqual(pick(null), [true, true, true, true]);
  const c = classifyFlow(synAck);
  assert.deepEqual([c.source.id, c.target.id, c.port, c.protocol, c.reply, c.edgeId], ['default/tiefighter', 'default/deathstar', 80, 'TCP', true, tie.id]);
});

test('10,000 flows aggregate fast', () => {
  const pods: Ep[] = [deathstar1, deathstar2, tiefighter, xwing, coredns];
  const flows: pb.Flow[] = [];
  for (let i = 0; i < 10_000; i++) {
    const src = pods[i % 4 === 0 ? 2 : 3];
    const dst = pods[i % 2];
    const kind = i % 5;
    if (kind === 0) flows.push(mk(src, 40000 + (i % 100), dst, 80, { t: 1_700_000_000 + i / 1000, verdict: src === xwing ? pb.Verdict.DROPPED : pb.Verdict.FORWARDED }));
    else if (kind === 1) flows.push(mk(dst, 80, src, 40000 + (i % 100), { reply: true, t: 1_700_000_000 + i / 1000 }));
    else if (kind === 2) flows.push(mk(src, 40000, dst, 80, { t: 1_700_000_000 + i / 1000, l7: { type: pb.L7FlowType.REQUEST } }));
    else if (kind === 3) flows.push(mk(dst, 80, src, 40000, { reply: true, t: 1_700_000_000 + i / 1000, l7: { type: pb.L7FlowType.RESPONSE, code: i % 50 ? 200 : 500, latencyMs: 1 + (i % 30) } }));
    else flows.push(mk(src, 53000, i % 3 ? coredns : world, 53, { proto: 'UDP', t: 1_700_000_000 + i / 1000, dstNames: i % 3 ? [] : ['example.com'] }));
  }
  const m = new ServiceMap();
  const start = performance.now();
  m.addAll(flows);
  const snap = m.snapshot();
  const ms = performance.now() - start;
  console.log(`10,000 flows: add + snapshot in ${ms.toFixed(1)} ms (${snap.nodes.length} nodes, ${snap.edges.length} edges)`);
  assert.ok(ms < 2000, `took ${ms} ms`);
  assert.equal(snap.edges.reduce((n, e) => n + e.flows, 0), 10_000);
  const byId = new Map(snap.edges.map((e) => [e.id, e]));
  assert.equal(byId.get('default/xwing -> default/deathstar 80/TCP')?.hasDrops, true);
  assert.equal(byId.get('default/tiefighter -> default/deathstar 80/TCP')?.hasDrops, false);
  assert.equal(byId.get('default/xwing -> default/deathstar 80/TCP')?.http?.requests, 1500);
  assert.deepEqual(snap.edges.map((e) => e.id), [
    'default/tiefighter -> default/deathstar 80/TCP',
    'default/tiefighter -> fqdn:example.com 53/UDP',
    'default/tiefighter -> kube-system/coredns 53/UDP',
    'default/xwing -> default/deathstar 80/TCP',
    'default/xwing -> fqdn:example.com 53/UDP',
    'default/xwing -> kube-system/coredns 53/UDP',
  ]);
});
