import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { toJson, createRegistry } from '@bufbuild/protobuf';
import { anyUnpack } from '@bufbuild/protobuf/wkt';
import type { RuleOrigin } from '@membrane/policy';
import { flow as pb, membranev1 } from '@membrane/proto';
import { FlowParser, type DatapathEventRecord, type EndpointInfo, type FlowContext } from './flow-parser.js';

const ip = (s: string) => s.split('.').reduce((a, b) => a * 256 + Number(b), 0);

const RULE1: RuleOrigin = { kind: 'CiliumNetworkPolicy', namespace: 'default', name: 'rule1', section: 'ingress', index: 0 };
const DEATHSTAR: EndpointInfo = {
  id: 3,
  identity: 1001,
  namespace: 'default',
  podName: 'deathstar-6f7b',
  labels: ['k8s:class=deathstar', 'k8s:org=empire'],
  workloads: [{ name: 'deathstar', kind: 'Deployment' }],
  policy: { origins: (cookie) => (cookie === 1 ? [RULE1] : []), defaultDenyBy: (dir) => (dir === 'ingress' ? [{ kind: 'CiliumNetworkPolicy', namespace: 'default', name: 'rule1' }] : []), matchType: (cookie) => (cookie === 1 ? 2 : 0) },
};
const XWING = { id: 5, identity: 1002, namespace: 'default', podName: 'xwing', labels: ['k8s:class=xwing', 'k8s:org=alliance'] };
const ctx: FlowContext = {
  nodeName: 'membrane',
  endpoint: (id) => [DEATHSTAR, XWING].find((e) => e.id === id),
  endpointAt: (a) => (a === ip('10.200.0.3') ? DEATHSTAR : a === ip('10.200.0.5') ? XWING : undefined),
  identityLabels: (id) => (id === 2 ? ['reserved:world'] : undefined),
  names: (a) => (a === ip('203.0.113.11') ? ['www.example.com'] : []),
};
const ev = (o: Partial<DatapathEventRecord>): DatapathEventRecord => ({ ts_ns: process.hrtime.bigint(), type: 1, direction: 0, proto: 6, tcp_flags: 2, verdict: 0, pad: 0, is_reply: 0, l7: 0, drop_reason: 0, proxy_port: 0, ep_id: 3, src_identity: 1002, dst_identity: 1001, saddr: ip('10.200.0.5'), daddr: ip('10.200.0.3'), sport: 40000, dport: 80, ifindex: 7, cookie: 0, len: 60, ...o });
const json = (f: pb.Flow) => toJson(pb.FlowSchema, f, { useProtoFieldName: true, registry: createRegistry(membranev1.FlowExtensionSchema) }) as Record<string, any>;

test("the xwing's SYN dropped by deathstar's default deny: both pods, POLICY_DENIED, rule1 as the policy behind the default deny", () => {
  const p = new FlowParser(ctx);
  const f = p.fromDatapath(ev({ type: 2, drop_reason: 133 }));
  const j = json(f);
  assert.equal(j['verdict'], 'DROPPED');
  assert.equal(j['drop_reason_desc'], 'POLICY_DENIED');
  assert.equal(j['traffic_direction'], 'INGRESS');
  assert.deepEqual([j['source']['pod_name'], j['destination']['pod_name']], ['xwing', 'deathstar-6f7b']);
  assert.deepEqual(j['destination']['workloads'], [{ name: 'deathstar', kind: 'Deployment' }]);
  assert.deepEqual(j['l4'], { TCP: { source_port: 40000, destination_port: 80, flags: { SYN: true } } });
  assert.deepEqual(j['event_type'], { type: 1, sub_type: 133 });
  assert.equal(j['ingress_denied_by'], undefined, 'Hubble leaves a default-deny drop unattributed...');
  const ext = anyUnpack(f.extensions!, membranev1.FlowExtensionSchema)!;
  assert.deepEqual(ext.defaultDenyBy.map((x) => [x.kind, x.namespace, x.name]), [['CiliumNetworkPolicy', 'default', 'rule1']], '...Membrane names it');
  assert.deepEqual(ext.rules, ['CiliumNetworkPolicy default/rule1']);
  assert.ok(Math.abs(Number(f.time!.seconds) * 1000 - Date.now()) < 5000, 'kernel time becomes wall-clock time');
});

test('an allowed connection: the entry that allowed it, by its cookie; a proxied one is REDIRECTED to the proxy port', () => {
  const p = new FlowParser(ctx);
  const ok = json(p.fromDatapath(ev({ cookie: 1 })));
  assert.equal(ok['verdict'], 'FORWARDED');
  assert.deepEqual(ok['ingress_allowed_by'], [{ name: 'rule1', namespace: 'default', kind: 'CiliumNetworkPolicy', labels: ['k8s:io.cilium.k8s.policy.derived-from=CiliumNetworkPolicy', 'k8s:io.cilium.k8s.policy.name=rule1', 'k8s:io.cilium.k8s.policy.namespace=default'] }]);
  const l7 = json(p.fromDatapath(ev({ cookie: 1, l7: 1, proxy_port: 15001 })));
  assert.deepEqual([l7['verdict'], l7['proxy_port'], l7['trace_observation_point']], ['REDIRECTED', 15001, 'TO_PROXY']);
  const out = json(p.fromDatapath(ev({ direction: 1, ep_id: 5, saddr: ip('10.200.0.5'), daddr: ip('203.0.113.11'), dst_identity: 2 })));
  assert.deepEqual([out['traffic_direction'], out['source']['pod_name'], out['destination']['labels'], out['destination_names']], ['EGRESS', 'xwing', ['reserved:world'], ['www.example.com']]);
  assert.notEqual(p.fromDatapath(ev({})).uuid, p.fromDatapath(ev({})).uuid);
});

test('L7: a denied HTTP request and a refused DNS query, with the rules that decided', () => {
  const p = new FlowParser(ctx);
  const http = json(p.fromHttp({ time: new Date().toISOString(), source: { ip: '10.200.0.5', port: 41000 }, destination: { ip: '10.200.0.3', port: 80 }, srcIdentity: 1002, dstIdentity: 1001, verdict: 'DENIED', method: 'PUT', url: '/v1/exhaust-port', host: 'deathstar.default.svc.cluster.local', protocol: 'HTTP/1.1', code: 403, latencyNs: 120_000, requestHeaders: [['Authorization', '[redacted]']], responseHeaders: [], rules: [RULE1], reason: 'no HTTP rule matches' }));
  assert.deepEqual([http['verdict'], http['Type'], http['l7']['type']], ['DROPPED', 'L7', 'REQUEST']);
  assert.deepEqual(http['l7']['http'], { code: 403, method: 'PUT', url: 'http://deathstar.default.svc.cluster.local/v1/exhaust-port', protocol: 'HTTP/1.1', headers: [{ key: 'Authorization', value: '[redacted]' }] });
  assert.deepEqual(http['ingress_denied_by'].map((x: { name: string }) => x.name), ['rule1']);
  const dns = json(p.fromDns({ kind: 'dns', time: new Date().toISOString(), protocol: 'udp', client: { ip: '10.200.0.5', port: 5353 }, server: { ip: '10.200.255.254', port: 53 }, srcIdentity: 1002, dstIdentity: 1005, query: 'evil.test', qtype: 'A', rcode: 'REFUSED', ips: [], verdict: 'refused', rules: [{ ...RULE1, section: 'egress' }], reason: 'matches no DNS rule', latencyMs: 0.2 }));
  assert.deepEqual([dns['verdict'], dns['l7']['dns']['query'], dns['l7']['dns']['rcode'], dns['l4']['UDP']['destination_port']], ['DROPPED', 'evil.test.', 5, 53]);
  assert.deepEqual(dns['egress_denied_by'].map((x: { name: string }) => x.name), ['rule1']);
});
