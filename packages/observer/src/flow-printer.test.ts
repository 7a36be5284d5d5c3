// The compact lines `hubble observe` prints, for the flows of the Star Wars
// walkthrough: the layout of Hubble's printer (pkg/printer: time in Go's
// StampMilli, "src (identity) arrow dst (identity) type verdict (summary)").
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import type { RuleOrigin } from '@membrane/policy';
import { FlowParser, type EndpointInfo, type FlowContext } from './flow-parser.js';

const ip = (s: string) => s.split('.').reduce((a, b) => a * 256 + Number(b), 0);
import { compactLine, dictBlock, stampMilli } from './flow-printer.js';

const RULE1: RuleOrigin = { kind: 'CiliumNetworkPolicy', namespace: 'default', name: 'rule1', section: 'ingress', index: 0 };
const DS: EndpointInfo = {
  id: 3,
  identity: 1001,
  namespace: 'default',
  podName: 'deathstar-6f7b',
  labels: [],
  policy: { origins: (c) => (c === 1 ? [RULE1] : []), defaultDenyBy: () => [{ kind: 'CiliumNetworkPolicy', namespace: 'default', name: 'rule1' }], matchType: () => 2 },
};
const XW = { id: 5, identity: 1002, namespace: 'default', podName: 'xwing', labels: [] };
const TF = { id: 6, identity: 1003, namespace: 'default', podName: 'tiefighter', labels: [] };
const ctx: FlowContext = {
  nodeName: 'membrane',
  endpoint: (id) => [DS, XW, TF].find((e) => e.id === id),
  endpointAt: (a) => new Map([[ip('10.200.0.3'), DS], [ip('10.200.0.5'), XW], [ip('10.200.0.6'), TF]]).get(a),
  identityLabels: () => undefined,
  names: () => [],
};
const T = Date.parse('2026-12-02T10:00:00.123Z');

function parser(): FlowParser {
  const p = new FlowParser(ctx);
  // Pin the kernel clock's offset so that ts_ns 0 is T.
  p.clock.pin(BigInt(T) * 1_000_000n);
  return p;
}
const dp = (o: object) => ({ ts_ns: 0n, type: 1, direction: 0, proto: 6, tcp_flags: 2, verdict: 0, pad: 0, is_reply: 0, l7: 0, drop_reason: 0, proxy_port: 0, ep_id: 3, src_identity: 1002, dst_identity: 1001, saddr: ip('10.200.0.5'), daddr: ip('10.200.0.3'), sport: 40000, dport: 80, ifindex: 7, cookie: 0, len: 60, ...o });

test('StampMilli pads the day with a space', () => {
  assert.equal(stampMilli({ seconds: BigInt(Math.floor(Date.parse('2026-12-02T09:08:07.006Z') / 1000)), nanos: 6_000_000 }), 'Dec  2 09:08:07.006');
});

test("compact lines as Hubble prints them: a drop, a policy verdict (with policy names), an HTTP denial, a reply, the world", () => {
  const p = parser();
  assert.equal(compactLine(p.fromDatapath(dp({ type: 2, drop_reason: 133 }))), 'Dec  2 10:00:00.123: default/xwing:40000 (ID:1002) <> default/deathstar-6f7b:80 (ID:1001) Policy denied DROPPED (TCP Flags: SYN)');
  assert.equal(
    compactLine(p.fromDatapath(dp({ type: 2, drop_reason: 133 })), { policyNames: true }),
    'Dec  2 10:00:00.123: default/xwing:40000 (ID:1002) <> default/deathstar-6f7b:80 (ID:1001) Policy denied DROPPED BY rule1 (CiliumNetworkPolicy) (TCP Flags: SYN)',
    'Membrane names the policy behind a default-deny drop',
  );
  const allowed = p.fromDatapath(dp({ cookie: 1, saddr: ip('10.200.0.6'), src_identity: 1003 }));
  assert.equal(compactLine(allowed), 'Dec  2 10:00:00.123: default/tiefighter:40000 (ID:1003) -> default/deathstar-6f7b:80 (ID:1001) policy-verdict:L3-L4 INGRESS ALLOWED (TCP Flags: SYN)');
  assert.equal(compactLine(allowed, { policyNames: true, nodeName: true }), 'Dec  2 10:00:00.123 [membrane]: default/tiefighter:40000 (ID:1003) -> default/deathstar-6f7b:80 (ID:1001) policy-verdict:L3-L4 INGRESS ALLOWED BY rule1 (CiliumNetworkPolicy) (TCP Flags: SYN)');
  const reply = p.fromDatapath(dp({ is_reply: 1, tcp_flags: 18, saddr: ip('10.200.0.3'), daddr: ip('10.200.0.6'), sport: 80, dport: 40000, direction: 1 }));
  assert.equal(compactLine(reply), 'Dec  2 10:00:00.123: default/tiefighter:40000 (ID:1003) <- default/deathstar-6f7b:80 (ID:1001) policy-verdict:none EGRESS ALLOWED (TCP Flags: SYN, ACK)');
  const http = p.fromHttp({ time: new Date(T).toISOString(), source: { ip: '10.200.0.6', port: 41000 }, destination: { ip: '10.200.0.3', port: 80 }, srcIdentity: 1003, dstIdentity: 1001, verdict: 'DENIED', method: 'PUT', url: '/v1/exhaust-port', host: 'deathstar.default.svc.cluster.local', protocol: 'HTTP/1.1', code: 403, latencyNs: 1e5, requestHeaders: [], responseHeaders: [], rules: [RULE1], reason: '' });
  http.isReply = false;
  assert.equal(compactLine(http), 'Dec  2 10:00:00.123: default/tiefighter:41000 (ID:1003) -> default/deathstar-6f7b:80 (ID:1001) http-request DROPPED (HTTP/1.1 PUT http://deathstar.default.svc.cluster.local/v1/exhaust-port)');
  const world = p.fromDatapath(dp({ direction: 1, ep_id: 5, daddr: ip('203.0.113.11'), dst_identity: 2, dport: 443 }));
  assert.match(compactLine(world), /: default\/xwing:40000 \(ID:1002\) -> 203\.0\.113\.11:443 \(world\) policy-verdict:none EGRESS ALLOWED \(TCP Flags: SYN\)$/);
  assert.equal(dictBlock(http), ['  TIMESTAMP: Dec  2 10:00:00.123', '     SOURCE: default/tiefighter:41000', 'DESTINATION: default/deathstar-6f7b:80', '       TYPE: http-request', '    VERDICT: DROPPED', '    SUMMARY: HTTP/1.1 PUT http://deathstar.default.svc.cluster.local/v1/exhaust-port'].join('\n'));
});

// Lines the real `hubble observe` printed in published runs of the Star
// Wars walkthrough (their clusters' pod names, identities and times). A
// flow of Membrane's with the same facts prints the same bytes.
const RECORDED_DROP = 'Aug 17 07:52:56.011: default/xwing:50210 (ID:30862) <> default/deathstar-67c5c5c88-ng7d8:80 (ID:3838) Policy denied DROPPED (TCP Flags: SYN)';
const RECORDED_L7 = 'Jul 24 15:03:54.062: default/tiefighter:53884 (ID:50046) -> default/deathstar-8c4c77fb7-h59s2:80 (ID:14731) http-request DROPPED (HTTP/1.1 PUT http://deathstar.default.svc.cluster.local/v1/exhaust-port)';

test('compact output equals lines recorded from Hubble', () => {
  const deathstar = (podName: string, identity: number): EndpointInfo => ({ id: 9, identity, namespace: 'default', podName, labels: ['k8s:class=deathstar'] });
  const pod = (podName: string, identity: number): EndpointInfo => ({ id: 8, identity, namespace: 'default', podName, labels: [] });
  const run = (server: EndpointInfo, client: EndpointInfo) =>
    new FlowParser({ nodeName: 'kind-worker', endpoint: (id) => (id === 9 ? server : id === 8 ? client : undefined), endpointAt: (a) => (a === ip('10.0.1.9') ? server : a === ip('10.0.1.8') ? client : undefined), identityLabels: () => undefined, names: () => [] });

  const p = run(deathstar('deathstar-67c5c5c88-ng7d8', 3838), pod('xwing', 30862));
  p.clock.pin(BigInt(Date.parse('2026-08-17T07:52:56.011Z')) * 1_000_000n);
  const drop = p.fromDatapath({ ...dp({ type: 2, drop_reason: 133, ep_id: 9, saddr: ip('10.0.1.8'), daddr: ip('10.0.1.9'), sport: 50210, src_identity: 30862, dst_identity: 3838 }), ts_ns: 0n });
  assert.equal(compactLine(drop), RECORDED_DROP);

  const q = run(deathstar('deathstar-8c4c77fb7-h59s2', 14731), pod('tiefighter', 50046));
  const http = q.fromHttp({ time: '2026-07-24T15:03:54.062Z', source: { ip: '10.0.1.8', port: 53884 }, destination: { ip: '10.0.1.9', port: 80 }, srcIdentity: 50046, dstIdentity: 14731, verdict: 'DENIED', method: 'PUT', url: '/v1/exhaust-port', host: 'deathstar.default.svc.cluster.local', protocol: 'HTTP/1.1', code: 403, latencyNs: 1e5, requestHeaders: [], responseHeaders: [], rules: [RULE1], reason: '' });
  assert.equal(compactLine(http), RECORDED_L7);
});
