import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { create } from '@bufbuild/protobuf';
import { flow as pb } from '@membrane/proto';
import { compileFilters, FilterError, parseLabelSelector } from './flow-filter.js';

const xwingDrop = create(pb.FlowSchema, {
  uuid: 'u1',
  verdict: pb.Verdict.DROPPED,
  IP: { source: '10.200.0.5', destination: '10.200.0.3', ipVersion: pb.IPVersion.IPv4 },
  l4: { protocol: { case: 'TCP', value: { sourcePort: 40000, destinationPort: 80, flags: { SYN: true } } } },
  source: { namespace: 'default', podName: 'xwing', identity: 1002, labels: ['k8s:class=xwing', 'k8s:org=alliance'] },
  destination: { namespace: 'default', podName: 'deathstar-6f7b', identity: 1001, labels: ['k8s:class=deathstar', 'k8s:org=empire'], workloads: [{ name: 'deathstar', kind: 'Deployment' }] },
  trafficDirection: pb.TrafficDirection.INGRESS,
  isReply: false,
  nodeName: 'membrane',
  eventType: { type: 1, subType: 133 },
});
const tiePut = create(pb.FlowSchema, {
  uuid: 'u2',
  verdict: pb.Verdict.DROPPED,
  Type: pb.FlowType.L7,
  source: { namespace: 'default', podName: 'tiefighter', identity: 1003, labels: ['k8s:class=tiefighter', 'k8s:org=empire'] },
  destination: { namespace: 'default', podName: 'deathstar-6f7b', identity: 1001 },
  destinationNames: ['deathstar.default.svc.cluster.local'],
  l7: { record: { case: 'http', value: { code: 403, method: 'PUT', url: 'http://deathstar/v1/exhaust-port?x=1', protocol: 'HTTP/1.1' } } },
  isReply: true,
});
const dns = create(pb.FlowSchema, { uuid: 'u3', verdict: pb.Verdict.FORWARDED, l7: { record: { case: 'dns', value: { query: 'api.example.com.', rcode: 0 } } }, IP: { source: '10.200.0.9', destination: '10.200.255.254' } });
const all = [xwingDrop, tiePut, dns];
const pick = (w: object[], b: object[] = []) => all.filter(compileFilters(w.map((x) => create(pb.FlowFilterSchema, x)), b.map((x) => create(pb.FlowFilterSchema, x)))).map((f) => f.uuid);

test('OR across whitelist filters, AND within one, the blacklist wins', () => {
  assert.deepEqual(pick([]), ['u1', 'u2', 'u3'], 'no filter: everything');
  assert.deepEqual(pick([{ verdict: [pb.Verdict.DROPPED] }]), ['u1', 'u2']);
  assert.deepEqual(pick([{ verdict: [pb.Verdict.DROPPED], sourcePod: ['default/tie'] }]), ['u2'], 'AND within a filter');
  assert.deepEqual(pick([{ sourcePod: ['xwing'] }, { protocol: ['dns'] }]), ['u1', 'u3'], 'OR across filters');
  assert.deepEqual(pick([{ verdict: [pb.Verdict.DROPPED] }], [{ sourceLabel: ['class=tiefighter'] }]), ['u1'], 'the blacklist wins');
  assert.deepEqual(pick([], [{ verdict: [pb.Verdict.FORWARDED] }]), ['u1', 'u2'], 'a blacklist alone');
});

test("fields as Hubble reads them", () => {
  assert.deepEqual(pick([{ sourceIp: ['10.200.0.0/29'] }]), ['u1']);
  assert.deepEqual(pick([{ destinationIp: ['10.200.0.3'] }]), ['u1']);
  assert.deepEqual(pick([{ destinationPod: ['default/'] }]), ['u1', 'u2'], 'a namespace alone');
  assert.deepEqual(pick([{ destinationPod: ['kube-system/deathstar'] }]), []);
  assert.deepEqual(pick([{ sourceLabel: ['k8s:org=empire'] }]), ['u2']);
  assert.deepEqual(pick([{ sourceLabel: ['org in (alliance, rebels)'] }]), ['u1']);
  assert.deepEqual(pick([{ sourceLabel: ['!class'] }]), [], 'every source has a class (u3 has no labels: no match)');
  assert.deepEqual(pick([{ destinationWorkload: [{ kind: 'Deployment' }] }]), ['u1']);
  assert.deepEqual(pick([{ httpStatusCode: ['4+'] }]), ['u2']);
  assert.deepEqual(pick([{ httpStatusCode: ['404'] }]), []);
  assert.deepEqual(pick([{ httpMethod: ['put'] }]), ['u2']);
  assert.deepEqual(pick([{ httpPath: ['exhaust'] }]), ['u2'], 'anywhere in the path');
  assert.deepEqual(pick([{ httpPath: ['^/v1/exhaust-port$'] }]), ['u2'], 'the path, without host and query');
  assert.deepEqual(pick([{ dnsQuery: ['example\\.com'] }]), ['u3']);
  assert.deepEqual(pick([{ destinationFqdn: ['*.svc.cluster.local'] }]), ['u2']);
  assert.deepEqual(pick([{ destinationPort: ['80'] }, { protocol: ['http'] }]), ['u1', 'u2']);
  assert.deepEqual(pick([{ tcpFlags: [{ SYN: true }] }]), ['u1']);
  assert.deepEqual(pick([{ tcpFlags: [{ SYN: true, ACK: true }] }]), []);
  assert.deepEqual(pick([{ reply: [true] }]), ['u2']);
  assert.deepEqual(pick([{ sourceIdentity: [1002, 1003] }]), ['u1', 'u2']);
  assert.deepEqual(pick([{ eventType: [{ type: 1 }] }]), ['u1']);
  assert.deepEqual(pick([{ eventType: [{ type: 1, matchSubType: true, subType: 181 }] }]), []);
  assert.deepEqual(pick([{ trafficDirection: [pb.TrafficDirection.INGRESS] }]), ['u1']);
  assert.deepEqual(pick([{ nodeName: ['mem*'] }]), ['u1']);
  assert.deepEqual(pick([{ uuid: ['u3'] }]), ['u3']);
});

test('a filter that cannot compile is an error naming the field, never a filter that matches nothing', () => {
  const bad: [object, RegExp][] = [
    [{ sourceIp: ['10.0.0.300'] }, /^whitelist\[0\]\.source_ip: "10\.0\.0\.300" is not an IP/],
    [{ httpPath: ['(unclosed'] }, /^whitelist\[0\]\.http_path: "\(unclosed" is not a valid RE2 pattern/],
    [{ httpStatusCode: ['4x'] }, /^whitelist\[0\]\.http_status_code:/],
    [{ protocol: ['carrier-pigeon'] }, /^whitelist\[0\]\.protocol:/],
    [{ destinationPort: ['http'] }, /^whitelist\[0\]\.destination_port:/],
    [{ sourceLabel: ['a=b=c'] }, /^whitelist\[0\]\.source_label:/],
  ];
  for (const [f, re] of bad) assert.throws(() => compileFilters([create(pb.FlowFilterSchema, f)]), (e: Error) => e instanceof FilterError && re.test(e.message), JSON.stringify(f));
  assert.deepEqual(parseLabelSelector('app=web, tier notin (db), !canary, k8s:zone'), {
    matchExpressions: [
      { key: 'app', operator: 'In', values: ['web'] },
      { key: 'tier', operator: 'NotIn', values: ['db'] },
      { key: 'canary', operator: 'DoesNotExist' },
      { key: 'k8s:zone', operator: 'Exists' },
    ],
  });
});
