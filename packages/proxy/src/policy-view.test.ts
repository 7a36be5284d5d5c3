import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { PolicyView, type ProxySnapshot } from './policy-view.js';

// The agent's identities as the snapshot carries them (labels only): a pod, and a CIDR identity the proxy must see as a prefix.
const SNAPSHOT: ProxySnapshot = {
  revision: 1,
  policies: [
    {
      apiVersion: 'cilium.io/v2',
      kind: 'CiliumNetworkPolicy',
      metadata: { name: 'out', namespace: 'default' },
      spec: {
        endpointSelector: { matchLabels: { app: 'client' } },
        egress: [
          { toCIDR: ['203.0.113.53/32'], toPorts: [{ ports: [{ port: '53', protocol: 'ANY' }], rules: { dns: [{ matchPattern: '*.example.com' }] } }] },
          { toCIDR: ['203.0.113.80/32'], toPorts: [{ ports: [{ port: '80', protocol: 'TCP' }], rules: { http: [{ method: 'GET', path: '/ok' }] } }] },
          { toFQDNs: [{ matchName: 'api.example.com' }], toPorts: [{ ports: [{ port: '8080', protocol: 'TCP' }], rules: { http: [{ method: 'GET' }] } }] },
        ],
      },
    } as never,
  ],
  identities: [
    { id: 1000, labels: ['k8s:app=client', 'k8s:io.kubernetes.pod.namespace=default'] },
    { id: 16777217, labels: ['cidr:203.0.113.53/32', 'reserved:world'] },
    { id: 16777218, labels: ['cidr:203.0.113.80/32', 'reserved:world'] },
    { id: 16777219, labels: ['cidr:203.0.113.90/32', 'reserved:world'] },
  ],
  ipcache: [
    { prefix: '10.0.0.10/32', identity: 1000 },
    { prefix: '203.0.113.53/32', identity: 16777217 },
    { prefix: '203.0.113.80/32', identity: 16777218 },
    { prefix: '203.0.113.90/32', identity: 16777219 },
  ],
  endpoints: [{ epId: 1, ip: '10.0.0.10', name: 'default/client', identity: 1000, namedPorts: [] }],
  fqdns: [{ ip: '203.0.113.90', names: ['api.example.com'] }],
};

test('CIDR peers: DNS and HTTP rules towards a toCIDR peer judge by the rule (the CIDR identity is read as its prefix)', () => {
  const v = new PolicyView(SNAPSHOT);
  assert.equal(v.decideDns('10.0.0.10', '203.0.113.53', 'udp', 53, 'www.example.com').allowed, true);
  assert.equal(v.decideDns('10.0.0.10', '203.0.113.53', 'tcp', 53, 'www.example.com').allowed, true);
  assert.equal(v.decideDns('10.0.0.10', '203.0.113.53', 'udp', 53, 'evil.test').allowed, false);
  assert.equal(v.decideHttp('10.0.0.10', '203.0.113.80', 80, { method: 'GET', path: '/ok', host: 'x', headers: {} }).allowed, true);
  assert.equal(v.decideHttp('10.0.0.10', '203.0.113.80', 80, { method: 'GET', path: '/no', host: 'x', headers: {} }).allowed, false);
});

test('toFQDNs peers: the snapshot\'s names select the address; HTTP rules under toFQDNs judge requests to it', () => {
  const v = new PolicyView(SNAPSHOT);
  assert.equal(v.decideHttp('10.0.0.10', '203.0.113.90', 8080, { method: 'GET', path: '/', host: 'api.example.com', headers: {} }).allowed, true);
  assert.equal(v.decideHttp('10.0.0.10', '203.0.113.90', 8080, { method: 'POST', path: '/', host: 'api.example.com', headers: {} }).allowed, false);
  const without = new PolicyView({ ...SNAPSHOT, fqdns: [] });
  assert.equal(without.decideHttp('10.0.0.10', '203.0.113.90', 8080, { method: 'GET', path: '/', host: 'api.example.com', headers: {} }).allowed, false, 'no lookup: default deny');
});

test('verdicts are kept per view, keyed by the whole request; a view whose rules read headers keeps none', () => {
  const v = new PolicyView(SNAPSHOT);
  const req = { method: 'GET', path: '/ok', host: 'x', headers: {} };
  const first = v.decideHttp('10.0.0.10', '203.0.113.80', 80, req);
  assert.equal(v.decideHttp('10.0.0.10', '203.0.113.80', 80, { ...req }), first, 'the same request: the kept verdict');
  assert.equal(v.decideHttp('10.0.0.10', '203.0.113.80', 80, { ...req, path: '/no' }).allowed, false);
  assert.equal(v.decideHttp('10.0.0.10', '203.0.113.80', 80, { ...req, method: 'POST' }).allowed, false);
  const withHeaders = structuredClone(SNAPSHOT);
  (withHeaders.policies[0] as unknown as { spec: { egress: { toPorts: { rules: { http: unknown[] } }[] }[] } }).spec.egress[1]!.toPorts[0]!.rules.http = [{ method: 'GET', headers: ['X-Token: yes'] }];
  const h = new PolicyView(withHeaders);
  assert.equal(h.decideHttp('10.0.0.10', '203.0.113.80', 80, { ...req, headers: { 'x-token': 'yes' } }).allowed, true);
  assert.equal(h.decideHttp('10.0.0.10', '203.0.113.80', 80, { ...req, headers: {} }).allowed, false, 'headers count when a rule reads them');
});
