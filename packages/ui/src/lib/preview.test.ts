import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { create } from '@bufbuild/protobuf';
import { endpointIdentityLabels } from '@membrane/policy';
import { flow as pb } from '@membrane/proto';
import { parse } from 'yaml';
import { isPreviewErrors, podLabelsOf, previewPolicies, type ClusterState, type PreviewEndpoint, type PreviewErrors, type PreviewInput, type PreviewReport } from './preview.js';

const rule1 = parse(readFileSync(new URL('../../../../examples/starwars/rule1-l7.yaml', import.meta.url), 'utf8')) as Record<string, any>;

/** rule1 with `GET /v1/` allowed too. */
function rule1With(...http: { method: string; path: string }[]) {
  const r = structuredClone(rule1);
  r.spec.ingress[0].toPorts[0].rules.http.push(...http);
  return r;
}

/** Labels as the agent lists them: the pod's and the ones the system derives. */
function agentLabels(pod: Record<string, string>): string[] {
  return [
    ...Object.entries(pod).map(([k, v]) => `k8s:${k}=${v}`),
    'k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name=default',
    'k8s:io.cilium.k8s.policy.cluster=default',
    'k8s:io.cilium.k8s.policy.serviceaccount=default',
    'k8s:io.kubernetes.pod.namespace=default',
  ];
}

const ep = (pod: string, ipv4: string, identity: number, labels: Record<string, string>): PreviewEndpoint => ({ pod, namespace: 'default', labels: agentLabels(labels), ipv4, identity });
const deathstar = ep('deathstar', '10.200.0.4', 259, { 'app.kubernetes.io/name': 'deathstar', org: 'empire', class: 'deathstar' });
const tiefighter = ep('tiefighter', '10.200.0.6', 260, { org: 'empire', class: 'tiefighter' });
const xwing = ep('xwing', '10.200.0.7', 261, { org: 'alliance', class: 'xwing' });
const state: ClusterState = { namespaces: [{ name: 'default', labels: {} }], endpoints: [deathstar, tiefighter, xwing] };

type Peer = PreviewEndpoint | { ip: string; identity: number; pod?: string };
const peerOf = (p: Peer) =>
  'labels' in p ? { namespace: p.namespace, podName: p.pod, labels: [...p.labels], identity: p.identity } : { identity: p.identity, ...(p.pod ? { namespace: 'default', podName: p.pod } : {}) };
const ipOf = (p: Peer) => ('ipv4' in p ? p.ipv4 : p.ip);

let n = 0;
function mkFlow(o: {
  from: Peer;
  to: Peer;
  port: number;
  proto?: 'TCP' | 'UDP';
  verdict: pb.Verdict;
  http?: { method: string; url: string };
  dns?: string;
  isReply?: boolean;
  icmpv6?: boolean;
}): pb.Flow {
  const l7 = o.http || o.dns;
  const ports = { sourcePort: 40000 + (n % 1000), destinationPort: o.port };
  return create(pb.FlowSchema, {
    uuid: `f${++n}`,
    verdict: o.verdict,
    ...(o.verdict === pb.Verdict.DROPPED && !l7 ? { dropReason: 133 } : {}),
    IP: { source: ipOf(o.from), destination: ipOf(o.to), ipVersion: pb.IPVersion.IPv4 },
    l4: {
      protocol: o.icmpv6
        ? { case: 'ICMPv6', value: { type: 128 } }
        : (o.proto ?? 'TCP') === 'TCP'
          ? { case: 'TCP', value: { ...ports, flags: o.isReply ? { SYN: true, ACK: true } : { SYN: true } } }
          : { case: 'UDP', value: ports },
    },
    source: peerOf(o.from),
    destination: peerOf(o.to),
    Type: l7 ? pb.FlowType.L7 : pb.FlowType.L3_L4,
    ...(o.isReply !== undefined ? { isReply: o.isReply } : {}),
    trafficDirection: pb.TrafficDirection.INGRESS,
    ...(o.http
      ? { l7: { type: pb.L7FlowType.REQUEST, record: { case: 'http', value: { method: o.http.method, url: o.http.url, protocol: 'HTTP/1.1', headers: [{ key: 'User-Agent', value: 'curl/8' }] } } } }
      : o.dns
        ? { l7: { type: pb.L7FlowType.REQUEST, record: { case: 'dns', value: { query: o.dns, qtypes: ['A'] } } } }
        : {}),
  });
}

const URL_BASE = 'http://deathstar.default.svc.cluster.local';
const { FORWARDED, DROPPED } = pb.Verdict;

function report(input: Partial<PreviewInput>): PreviewReport {
  const r = previewPolicies({ state, current: [rule1], edited: [], flows: [], ...input });
  if (isPreviewErrors(r)) assert.fail(`unexpected errors: ${r.errors.map((e) => e.line).join('; ')}`);
  return r;
}

test('Star Wars: allowing GET /v1/ changes exactly the GET flow; the bare SYN to the L7 port is unjudged; the reply is counted', () => {
  const flows = [
    mkFlow({ from: tiefighter, to: deathstar, port: 80, verdict: FORWARDED, http: { method: 'POST', url: `${URL_BASE}/v1/request-landing` } }),
    mkFlow({ from: tiefighter, to: deathstar, port: 80, verdict: DROPPED, http: { method: 'PUT', url: `${URL_BASE}/v1/exhaust-port` } }),
    mkFlow({ from: tiefighter, to: deathstar, port: 80, verdict: DROPPED, http: { method: 'GET', url: `${URL_BASE}/v1/` } }),
    mkFlow({ from: xwing, to: deathstar, port: 80, verdict: DROPPED, isReply: false }),
    mkFlow({ from: deathstar, to: tiefighter, port: 40001, verdict: FORWARDED, isReply: true }),
    mkFlow({ from: tiefighter, to: deathstar, port: 80, verdict: FORWARDED, isReply: false }),
  ];
  const r = report({ edited: [rule1With({ method: 'GET', path: '/v1/' })], flows });
  assert.equal(r.changed.length, 1);
  const c = r.changed[0]!;
  assert.equal(c.uuid, flows[2]!.uuid);
  assert.equal(c.flow, flows[2]);
  assert.equal(c.before, 'denied');
  assert.equal(c.after, 'allowed');
  assert.match(c.reasonBefore, /GET \/v1\/ matches no HTTP rule/);
  assert.match(c.reasonAfter, /GET \/v1\/ allowed .* by CiliumNetworkPolicy default\/rule1 ingress\[0\]/);
  assert.deepEqual(c.rulesAfter.map((x) => [x.kind, x.namespace, x.name, x.section, x.index]), [['CiliumNetworkPolicy', 'default', 'rule1', 'ingress', 0]]);
  assert.equal(c.recorded, 'denied');
  assert.equal(c.recordedAgrees, true);
  // POST (allowed in both), PUT (denied in both), the X-wing's SYN (denied at L3 in both).
  assert.equal(r.unchanged, 3);
  assert.equal(r.replies, 1);
  assert.deepEqual(r.unjudged.map((u) => u.uuid), [flows[5]!.uuid]);
  assert.match(r.unjudged[0]!.reason, /^L7 rules apply on TCP\/80 and the flow carries no HTTP request/);
  assert.equal(r.disagreements, 0);
});

test('a bare SYN to the L7 port is judged when both sets send it to the same L7 rules, or deny it at L3/L4', () => {
  // An unrelated edit (the X-wing allowed at L3/L4 by another policy) leaves the TIE fighter's
  // connection to the same HTTP rules: any request it makes meets the same verdict, so unchanged.
  const alliance = {
    apiVersion: 'cilium.io/v2',
    kind: 'CiliumNetworkPolicy',
    metadata: { name: 'alliance' },
    spec: { endpointSelector: { matchLabels: { class: 'deathstar' } }, ingress: [{ fromEndpoints: [{ matchLabels: { org: 'alliance' } }] }] },
  };
  const syn = mkFlow({ from: tiefighter, to: deathstar, port: 80, verdict: FORWARDED, isReply: false });
  const xsyn = mkFlow({ from: xwing, to: deathstar, port: 80, verdict: DROPPED });
  const r = report({ edited: [alliance], flows: [syn, xsyn] });
  assert.deepEqual(r.unjudged, []);
  assert.equal(r.unchanged, 1);
  assert.deepEqual(r.changed.map((c) => [c.uuid, c.before, c.after]), [[xsyn.uuid, 'denied', 'allowed']]);
  assert.match(r.changed[0]!.reasonAfter, /alliance ingress\[0\]/);

  // Deleting rule1: the SYN went to the proxy before (request unknown) and is free after: unjudged.
  const del = report({ deleted: [{ kind: 'CiliumNetworkPolicy', namespace: 'default', name: 'rule1' }], flows: [syn, xsyn] });
  assert.deepEqual(del.unjudged.map((u) => u.uuid), [syn.uuid]);
  assert.match(del.unjudged[0]!.reason, /under the current policies/);
  assert.deepEqual(del.changed.map((c) => c.uuid), [xsyn.uuid]);
});

test('before is the engine verdict, not the recorded one; changed keeps flow order; recordedAgrees hints', () => {
  const flows = [
    mkFlow({ from: tiefighter, to: deathstar, port: 80, verdict: FORWARDED, http: { method: 'GET', url: `${URL_BASE}/v1/` } }), // recorded wrongly
    mkFlow({ from: tiefighter, to: deathstar, port: 80, verdict: FORWARDED, http: { method: 'POST', url: `${URL_BASE}/v1/request-landing` } }),
    mkFlow({ from: tiefighter, to: deathstar, port: 80, verdict: DROPPED, http: { method: 'GET', url: `${URL_BASE}/v1/` } }),
  ];
  // Edited rule1: GET /v1/ instead of POST /v1/request-landing.
  const edited = structuredClone(rule1);
  edited.spec.ingress[0].toPorts[0].rules.http = [{ method: 'GET', path: '/v1/' }];
  const r = report({ edited: [edited], flows });
  assert.deepEqual(r.changed.map((c) => [c.uuid, c.before, c.after, c.recordedAgrees]), [
    [flows[0]!.uuid, 'denied', 'allowed', false],
    [flows[1]!.uuid, 'allowed', 'denied', true],
    [flows[2]!.uuid, 'denied', 'allowed', true],
  ]);
  assert.equal(r.disagreements, 1);
});

test('outside peers by address, entities by identity; peers the engine cannot place are unjudged with the reason', () => {
  const world = { ip: '203.0.113.9', identity: 2 };
  const flows = [
    mkFlow({ from: world, to: deathstar, port: 80, verdict: DROPPED }),
    mkFlow({ from: { ip: '10.200.0.99', identity: 300, pod: 'ghost' }, to: deathstar, port: 80, verdict: DROPPED }),
    mkFlow({ from: { ip: '10.200.0.98', identity: 301 }, to: deathstar, port: 80, verdict: DROPPED }),
    mkFlow({ from: tiefighter, to: deathstar, port: 0, verdict: FORWARDED, icmpv6: true }),
  ];
  // Edited: the world may reach the Death Star on 80 at L3/L4 (next to rule1's L7 rule for the empire).
  const open = structuredClone(rule1);
  open.spec.ingress.push({ fromCIDR: ['203.0.113.0/24'], toPorts: [{ ports: [{ port: '80', protocol: 'TCP' }] }] });
  const r = report({ edited: [open], flows });
  assert.deepEqual(r.changed.map((c) => [c.uuid, c.before, c.after]), [[flows[0]!.uuid, 'denied', 'allowed']]);
  assert.deepEqual(
    r.unjudged.map((u) => u.uuid),
    flows.slice(1).map((f) => f.uuid),
  );
  assert.match(r.unjudged[0]!.reason, /pod default\/ghost is not in the cluster state/);
  assert.match(r.unjudged[1]!.reason, /10\.200\.0\.98 has cluster identity 301 but is no endpoint/);
  assert.match(r.unjudged[2]!.reason, /ICMPv6/);
});

test('DNS: queries judged by their name; a bare connection to a DNS-proxied port is unjudged', () => {
  const host = { ip: '10.200.255.254', identity: 1 };
  const dnsPolicy = {
    apiVersion: 'cilium.io/v2',
    kind: 'CiliumNetworkPolicy',
    metadata: { name: 'tie-dns', namespace: 'default' },
    spec: {
      endpointSelector: { matchLabels: { class: 'tiefighter' } },
      egress: [{ toEntities: ['host'], toPorts: [{ ports: [{ port: '53', protocol: 'UDP' }], rules: { dns: [{ matchPattern: '*.*.svc.cluster.local' }] } }] }],
    },
  };
  const flows = [
    mkFlow({ from: tiefighter, to: host, port: 53, proto: 'UDP', verdict: FORWARDED, dns: 'deathstar.default.svc.cluster.local.' }),
    mkFlow({ from: tiefighter, to: host, port: 53, proto: 'UDP', verdict: FORWARDED, dns: 'rebels.example.com.' }),
    mkFlow({ from: tiefighter, to: host, port: 53, proto: 'UDP', verdict: FORWARDED }),
  ];
  const r = report({ current: [], edited: [dnsPolicy], flows });
  assert.equal(r.unchanged, 1);
  assert.deepEqual(r.changed.map((c) => [c.uuid, c.before, c.after]), [[flows[1]!.uuid, 'allowed', 'denied']]);
  assert.match(r.changed[0]!.reasonAfter, /DNS query rebels\.example\.com\. matches no DNS rule of CiliumNetworkPolicy default\/tie-dns egress\[0\]/);
  assert.deepEqual(r.unjudged.map((u) => u.uuid), [flows[2]!.uuid]);
  assert.match(r.unjudged[0]!.reason, /^L7 rules apply on UDP\/53 and the flow carries no DNS request \(under the edited policies/);
});

test('invalid edited documents give errors naming the document and the field, and do not throw', () => {
  const bad = structuredClone(rule1);
  bad.spec.ingress[0].toPorts[0].ports[0].port = '99999';
  const r = previewPolicies({ state, current: [rule1], edited: [bad, { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'x' } }, rule1, rule1], flows: [], sources: { edited: 'editor' } });
  assert.ok(isPreviewErrors(r));
  const errors = (r as PreviewErrors).errors;
  assert.deepEqual(
    errors.map((e) => [e.set, e.document, e.path]),
    [
      ['edited', 'editor: document 1 (CiliumNetworkPolicy default/rule1)', 'spec.ingress[0].toPorts[0].ports[0].port'],
      ['edited', 'editor: document 2', 'kind'],
      ['edited', 'editor: document 4 (CiliumNetworkPolicy default/rule1)', 'metadata.name'],
    ],
  );
  assert.match(errors[0]!.message, /99999 is not a valid port number/);
  assert.equal(errors[0]!.line, `editor: document 1 (CiliumNetworkPolicy default/rule1): spec.ingress[0].toPorts[0].ports[0].port: ${errors[0]!.message}`);
  assert.match(errors[1]!.message, /"Pod" is not a supported kind/);
  assert.match(errors[2]!.message, /already defined by document 3/);
  assert.doesNotThrow(() => previewPolicies({ state, current: [], edited: [null, 'text', 42], flows: [] }));
});

test('pod labels: the k8s labels without the derived ones give back the identity the agent listed', () => {
  const p = podLabelsOf([...deathstar.labels, 'reserved:init']);
  assert.deepEqual(p.labels, { 'app.kubernetes.io/name': 'deathstar', org: 'empire', class: 'deathstar' });
  assert.equal(p.serviceAccount, 'default');
  const derived = endpointIdentityLabels({ namespace: 'default', podLabels: p.labels, namespaceLabels: p.namespaceLabels, serviceAccount: p.serviceAccount! });
  assert.deepEqual(derived.labels.map((l) => `${l.source}:${l.key}=${l.value}`).sort(), [...deathstar.labels].sort());
});

test('named ports: unjudged while the pods container ports are unknown, judged once given', () => {
  const named = structuredClone(rule1);
  named.spec.ingress[0].toPorts[0].ports[0].port = 'http';
  const flows = [mkFlow({ from: tiefighter, to: deathstar, port: 80, verdict: DROPPED, http: { method: 'GET', url: `${URL_BASE}/v1/` } })];
  const unknown = report({ current: [named], edited: [rule1With({ method: 'GET', path: '/v1/' })], flows });
  assert.match(unknown.unjudged[0]?.reason ?? '', /names a port and the cluster state does not give the container ports of default\/deathstar/);
  const known: ClusterState = { ...state, endpoints: state.endpoints.map((e) => ({ ...e, namedPorts: e === deathstar ? [{ name: 'http', port: 80, proto: 6 }] : [] })) };
  const r = report({ state: known, current: [named], edited: [rule1With({ method: 'GET', path: '/v1/' })], flows });
  assert.deepEqual(r.changed.map((c) => [c.before, c.after]), [['denied', 'allowed']]);
});

test('10,000 flows preview well under a second', () => {
  const outsiders = Array.from({ length: 50 }, (_, i) => ({ ip: `198.51.100.${i + 1}`, identity: 2 }));
  const flows: pb.Flow[] = [];
  for (let i = 0; i < 10_000; i++) {
    const k = i % 5;
    if (k === 0) flows.push(mkFlow({ from: tiefighter, to: deathstar, port: 80, verdict: DROPPED, http: { method: 'GET', url: `${URL_BASE}/v1/${i % 300}` } }));
    else if (k === 1) flows.push(mkFlow({ from: tiefighter, to: deathstar, port: 80, verdict: FORWARDED, http: { method: 'POST', url: `${URL_BASE}/v1/request-landing` } }));
    else if (k === 2) flows.push(mkFlow({ from: outsiders[i % 50]!, to: deathstar, port: 80 + (i % 7), verdict: DROPPED }));
    else if (k === 3) flows.push(mkFlow({ from: deathstar, to: tiefighter, port: 40000 + (i % 1000), verdict: FORWARDED, isReply: true }));
    else flows.push(mkFlow({ from: xwing, to: deathstar, port: 80, verdict: DROPPED }));
  }
  const edited = rule1With({ method: 'GET', path: '/v1/[0-9]+' });
  const t0 = performance.now();
  const r = report({ edited: [edited], flows });
  const ms = performance.now() - t0;
  assert.equal(r.replies, 2000);
  assert.equal(r.changed.length, 2000);
  assert.equal(r.unchanged, 6000);
  assert.ok(ms < 1000, `took ${ms.toFixed(0)} ms`);
});
