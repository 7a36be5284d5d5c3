// The two ways the observer makes a datapath event's flow (a flow.Flow for
// filters and printers, wire bytes for GetFlows) say the same, for every
// kind of event; and the ring takes the kernel reader's batches in, counting
// what it cannot take.
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { equals, fromBinary } from '@bufbuild/protobuf';
import type { DatapathEventRecord } from '@membrane/api';
import type { RuleOrigin } from '@membrane/policy';
import { flow as pb, observer as obs } from '@membrane/proto';
import type { EndpointInfo, FlowContext } from './flow-context.js';
import { eventBatch, Observer } from './observer.js';
import { ProtoWriter } from './proto-writer.js';

const ip = (s: string) => s.split('.').reduce((a, b) => a * 256 + Number(b), 0);
const RULE1: RuleOrigin = { kind: 'CiliumNetworkPolicy', namespace: 'default', name: 'rule1', section: 'ingress', index: 0 };
const DENY: RuleOrigin = { kind: 'CiliumClusterwideNetworkPolicy', name: 'block-all', section: 'egressDeny', index: 2 };
const SERVER: EndpointInfo = {
  id: 3,
  identity: 1001,
  namespace: 'default',
  podName: 'deathstar-6f7b',
  labels: ['k8s:class=deathstar', 'k8s:org=empire'],
  workloads: [{ name: 'deathstar', kind: 'Deployment' }],
  policy: {
    origins: (c) => (c === 1 ? [RULE1] : c === 2 ? [DENY, RULE1] : []),
    matchType: (c) => (c === 1 ? 2 : c === 2 ? 4 : 0),
    defaultDenyBy: (d) => (d === 'ingress' ? [{ kind: 'CiliumNetworkPolicy', namespace: 'default', name: 'rule1' }] : []),
  },
};
const CLIENT: EndpointInfo = { id: 5, identity: 1002, namespace: 'empire', podName: 'tiefighter', labels: ['k8s:class=tiefighter'] };
const ctx: FlowContext = {
  nodeName: 'membrane-node',
  endpoint: (id) => (id === 3 ? SERVER : id === 5 ? CLIENT : undefined),
  endpointAt: (a) => (a === ip('10.200.0.3') ? SERVER : a === ip('10.200.0.5') ? CLIENT : undefined),
  identityLabels: (id) => (id === 2 ? ['reserved:world'] : id === 16777217 ? ['cidr:203.0.113.0/24', 'reserved:world'] : undefined),
  names: (a) => (a === ip('203.0.113.11') ? ['www.example.com', 'ünïcode.example'] : []),
  service: (a, port) => (a === ip('10.200.0.3') && port === 80 ? { name: 'deathstar', namespace: 'default' } : undefined),
};

/** A spread of events: every type, protocol, direction, flag set, attribution and peer the parser distinguishes. */
function events(): DatapathEventRecord[] {
  const out: DatapathEventRecord[] = [];
  let n = 0;
  const base = { ts_ns: 1_000_000_123n, type: 1, direction: 0, proto: 6, tcp_flags: 2, verdict: 1, is_reply: 0, l7: 0, pad: 0, drop_reason: 0, proxy_port: 0, ep_id: 3, src_identity: 1002, dst_identity: 1001, saddr: ip('10.200.0.5'), daddr: ip('10.200.0.3'), sport: 40000, dport: 80, ifindex: 7, cookie: 0, len: 60 };
  for (const type of [1, 2])
    for (const direction of [0, 1])
      for (const proto of [6, 17, 1, 132, 47])
        for (const cookie of [0, 1, 2, 9])
          for (const [peer, identity] of [['10.200.0.5', 1002], ['203.0.113.11', 16777217], ['198.51.100.7', 2], ['10.200.0.99', 7777]] as const) {
            const reason = type === 2 ? (cookie === 2 ? 181 : n % 3 === 0 ? 132 : 133) : 0;
            const l7 = type === 1 && n % 4 === 0 ? 1 : 0;
            out.push({
              ...base,
              ts_ns: base.ts_ns + BigInt(n) * 999_999_937n,
              type,
              direction,
              proto,
              tcp_flags: proto === 6 ? (n * 37) & 0xff : 0,
              is_reply: n % 5 === 0 ? 1 : 0,
              l7,
              proxy_port: l7 ? 15001 : 0,
              drop_reason: reason,
              ep_id: n % 7 === 0 ? 42 : 3, // 42: an endpoint the context does not know
              src_identity: direction === 1 ? 1001 : identity,
              dst_identity: direction === 1 ? identity : 1001,
              saddr: direction === 1 ? ip('10.200.0.3') : ip(peer),
              daddr: direction === 1 ? ip(peer) : ip('10.200.0.3'),
              sport: direction === 1 ? 80 : 40000 + n,
              dport: direction === 1 ? 40000 + n : 80,
              ifindex: n % 6 === 0 ? 0 : 7,
              cookie,
            });
            n++;
          }
  return out;
}

test('the wire bytes of each flow decode to the flow.Flow made of the same event', () => {
  const evs = events();
  const o = new Observer({ context: ctx, capacity: evs.length });
  o.ingestDatapath(evs);
  assert.equal(o.seen, evs.length);
  const w = new ProtoWriter(64);
  for (let seq = 0; seq < evs.length; seq++) {
    w.reset();
    assert.ok(o.writeResponse(seq, w, 'membrane-node'));
    const bytes = w.take();
    assert.equal(bytes[0], 0, 'an uncompressed gRPC frame');
    assert.equal(new DataView(bytes.buffer).getUint32(1), bytes.length - 5, 'its length');
    const res = fromBinary(obs.GetFlowsResponseSchema, bytes.subarray(5));
    assert.equal(res.responseTypes.case, 'flow');
    const made = o.flow(seq)!;
    assert.ok(equals(pb.FlowSchema, res.responseTypes.value as pb.Flow, made), `event ${seq}: ${JSON.stringify(evs[seq], (_, v) => (typeof v === 'bigint' ? String(v) : v))}`);
    assert.equal(res.nodeName, 'membrane-node');
    assert.ok(res.time && made.time && res.time.seconds === made.time.seconds && res.time.nanos === made.time.nanos);
  }
});

test('attribution: the entry behind an allowed flow and a deny rule; a default-deny drop by the policy behind it; none for an unknown endpoint', () => {
  const o = new Observer({ context: ctx });
  const ev = { ...events()[0]!, l7: 0, proxy_port: 0 };
  o.ingestDatapath([
    { ...ev, ep_id: 3, type: 1, cookie: 1 },
    { ...ev, ep_id: 3, type: 2, drop_reason: 181, cookie: 2, direction: 1 },
    { ...ev, ep_id: 3, type: 2, drop_reason: 133, cookie: 0 },
    { ...ev, ep_id: 42, type: 1, cookie: 1 },
  ]);
  const [allowed, denied, defaultDeny, unknown] = [0, 1, 2, 3].map((s) => o.flow(s)!);
  assert.deepEqual(allowed!.ingressAllowedBy.map((p) => p.name), ['rule1']);
  assert.equal(allowed!.policyMatchType, 2);
  assert.deepEqual(denied!.egressDeniedBy.map((p) => p.name), ['block-all', 'rule1']);
  assert.deepEqual([defaultDeny!.ingressDeniedBy.length, defaultDeny!.extensions?.typeUrl], [0, 'type.googleapis.com/membrane.v1.FlowExtension']);
  assert.deepEqual([unknown!.ingressAllowedBy.length, unknown!.destination?.ID, unknown!.destination?.podName], [0, 42, '']);
});

test('time: kernel nanoseconds become wall-clock time to the nanosecond', () => {
  const o = new Observer({ context: ctx });
  o.clock.pin(1_764_669_600_000_000_000n); // 2025-12-02T10:00:00Z
  o.ingestDatapath([{ ...events()[0]!, ts_ns: 1_999_999_999n }, { ...events()[0]!, ts_ns: (1n << 54n) + 7n }]);
  assert.deepEqual([o.flow(0)!.time!.seconds, o.flow(0)!.time!.nanos], [1_764_669_601n, 999_999_999]);
  const big = (1n << 54n) + 7n;
  assert.deepEqual([o.flow(1)!.time!.seconds, o.flow(1)!.time!.nanos], [1_764_669_600n + big / 1_000_000_000n, Number(big % 1_000_000_000n)]);
  assert.equal(o.timeMs(0), 1_764_669_601_999);
});

test('a batch: records of another size and a torn tail are counted lost by the observer, the rest taken in', () => {
  const problems: string[] = [];
  const o = new Observer({ context: ctx, problem: (p) => problems.push(p) });
  const good = eventBatch([events()[0]!, events()[1]!]);
  const odd = new Uint8Array(4 + 8);
  new DataView(odd.buffer).setUint32(0, 8, true);
  const torn = new Uint8Array(4 + 10);
  new DataView(torn.buffer).setUint32(0, 56, true);
  const batch = new Uint8Array(good.length + odd.length + torn.length);
  batch.set(good.subarray(0, 60));
  batch.set(odd, 60);
  batch.set(good.subarray(60), 60 + odd.length);
  batch.set(torn, 60 + odd.length + 60);
  o.ingestBatch(batch);
  assert.equal(o.seen, 2);
  assert.deepEqual(o.status().lost, { kernel: 0, observer: 2 });
  assert.equal(problems.length, 1, 'told once');
});

test('metrics count every event, tallied and brought up to date when read', async () => {
  const o = new Observer({ context: ctx });
  const ev = { ...events()[0]!, ep_id: 3, l7: 0, proxy_port: 0, is_reply: 0 };
  const batch: DatapathEventRecord[] = [];
  for (let i = 0; i < 1000; i++) batch.push({ ...ev, type: 2, drop_reason: 133, tcp_flags: 2, dport: 80 });
  for (let i = 0; i < 500; i++) batch.push({ ...ev, type: 1, cookie: 1, tcp_flags: 2, dport: 80 });
  o.ingestDatapath(batch);
  const text = await o.metrics.text();
  assert.match(text, /hubble_drop_total\{reason="POLICY_DENIED",protocol="TCP"\} 1000/);
  assert.match(text, /hubble_flows_processed_total\{type="L3_L4",subtype="[^"]+",verdict="FORWARDED"\} 500/);
  assert.match(text, /hubble_policy_verdicts_total\{direction="ingress",match="l3-l4",action="forwarded"\} 500/);
  assert.match(text, /hubble_port_distribution_total\{protocol="TCP",port="80"\} 1500/);
  o.ingestDatapath(batch.slice(0, 10));
  assert.match(await o.metrics.text(), /hubble_drop_total\{reason="POLICY_DENIED",protocol="TCP"\} 1010/);
});
