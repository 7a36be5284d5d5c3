// The simulator end to end: scenario -> identities -> MapStates -> verdicts.
// Sources are cited per test group.
import { strict as assert } from 'node:assert';
import { describe, test } from 'node:test';
import { FIRST_CLUSTER_IDENTITY, FIRST_LOCAL_IDENTITY, ReservedIdentity } from './identity.js';
import { parseScenario } from './scenario.js';
import { buildWorld, simulate, type ProbeResult } from './simulate.js';

const run = (text: string): ProbeResult[] => simulate(parseScenario(text, 'sim.yaml'));
const verdicts = (text: string): string[] => run(text).map((r) => `${r.from} -> ${r.to}: ${r.verdict}`);

describe('buildWorld', () => {
  test('one identity per distinct label set; outside IPs get local identities; entities map to reserved ones', () => {
    const w = buildWorld(
      parseScenario(
        `name: world
endpoints:
  - {name: a1, labels: {app: a}}
  - {name: a2, labels: {app: a}}
  - {name: a3, namespace: other, labels: {app: a}}
  - {name: sa, labels: {app: a}, serviceAccount: robot}
outside:
  - {name: ext, ip: 192.0.2.1}
  - {name: ext-again, ip: 192.0.2.1}
  - {name: v6, ip: "2001:db8::1"}
  - {name: node, entity: host}
  - {name: internet, entity: world}
policies: []
probes: []
`,
        'sim.yaml',
      ),
    );
    const id = (n: string) => w.peers.get(n)!.identity.id;
    assert.equal(id('default/a1'), FIRST_CLUSTER_IDENTITY);
    assert.equal(id('default/a2'), FIRST_CLUSTER_IDENTITY, 'same labels, same identity');
    assert.equal(id('other/a3'), FIRST_CLUSTER_IDENTITY + 1);
    assert.equal(id('default/sa'), FIRST_CLUSTER_IDENTITY + 2, 'the service account is part of the identity');
    assert.equal(id('ext'), FIRST_LOCAL_IDENTITY);
    assert.equal(id('ext-again'), FIRST_LOCAL_IDENTITY);
    assert.equal(id('v6'), FIRST_LOCAL_IDENTITY + 1);
    assert.equal(id('node'), ReservedIdentity.host);
    assert.equal(id('internet'), ReservedIdentity.world);
    assert.equal(w.peers.get('default/a1')!.ip, '10.255.0.1');
    assert.equal(w.peers.get('default/a2')!.ip, '10.255.0.2');
    assert.deepEqual([...w.policies.keys()].sort((x, y) => x - y), [ReservedIdentity.host, FIRST_CLUSTER_IDENTITY, FIRST_CLUSTER_IDENTITY + 1, FIRST_CLUSTER_IDENTITY + 2]);
  });
});

// Cilium docs "Policy Enforcement Modes" (a connection needs the sender's
// egress and the receiver's ingress) and "Deny Policies".
describe('both sides decide', () => {
  const results = run(`name: sides
endpoints:
  - {name: a, labels: {app: a}}
  - {name: b, labels: {app: b}}
  - {name: c, labels: {app: c}}
policies:
  - |
    apiVersion: cilium.io/v2
    kind: CiliumNetworkPolicy
    metadata: {name: a-out}
    spec:
      endpointSelector: {matchLabels: {app: a}}
      egress: [{toEndpoints: [{matchLabels: {app: b}}]}]
  - |
    apiVersion: cilium.io/v2
    kind: CiliumNetworkPolicy
    metadata: {name: b-in}
    spec:
      endpointSelector: {matchLabels: {app: b}}
      ingress: [{fromEndpoints: [{matchLabels: {app: c}}]}]
probes:
  - {from: a, to: b, port: 80}
  - {from: c, to: b, port: 80}
  - {from: a, to: c, port: 80}
`);

  test('the receiver\'s ingress can deny what the sender\'s egress allows', () => {
    const r = results[0]!;
    assert.equal(r.verdict, 'denied');
    assert.equal(r.deniedBy, 'ingress');
    assert.equal(r.dropReason, 133);
    assert.equal(r.egress?.verdict, 'allowed');
    assert.equal(r.ingress?.verdict, 'denied');
    assert.deepEqual(r.egress?.rules, [{ kind: 'CiliumNetworkPolicy', namespace: 'default', name: 'a-out', section: 'egress', index: 0 }]);
  });

  test('allowed when neither side objects', () => {
    assert.equal(results[1]!.verdict, 'allowed');
    assert.equal(results[1]!.egress?.enforced, false);
  });

  test('the sender\'s egress denies first', () => {
    assert.equal(results[2]!.verdict, 'denied');
    assert.equal(results[2]!.deniedBy, 'egress');
  });
});

// CVE-2023-39347 (GHSA advisory "Specific Cilium configurations vulnerable
// to bypass of namespace restrictions"); utils.go getEndpointSelector.
describe('namespaces', () => {
  test('a pod labelled with another namespace gains nothing (CVE-2023-39347)', () => {
    assert.deepEqual(
      verdicts(`name: spoof
namespaces: {kube-system: {labels: {tier: infra}}, tenant: {}}
endpoints:
  - {name: dns, namespace: kube-system, labels: {k8s-app: kube-dns}}
  - {name: admin, namespace: kube-system, labels: {app: admin}}
  - {name: evil, namespace: tenant, labels: {app: admin, io.kubernetes.pod.namespace: kube-system, io.cilium.k8s.namespace.labels.tier: infra}}
policies:
  - |
    apiVersion: cilium.io/v2
    kind: CiliumNetworkPolicy
    metadata: {name: dns, namespace: kube-system}
    spec:
      endpointSelector: {matchLabels: {k8s-app: kube-dns}}
      ingress:
      - fromEndpoints: [{matchLabels: {app: admin}}]
      - fromEndpoints: [{matchLabels: {k8s:io.cilium.k8s.namespace.labels.tier: infra, app: other}}]
  - |
    apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: {name: infra-only, namespace: kube-system}
    spec:
      podSelector: {matchLabels: {app: admin}}
      ingress: [{from: [{namespaceSelector: {matchLabels: {tier: infra}}}]}]
probes:
  - {from: kube-system/admin, to: kube-system/dns, port: 53, protocol: UDP}
  - {from: tenant/evil, to: kube-system/dns, port: 53, protocol: UDP}
  - {from: kube-system/dns, to: kube-system/admin, port: 443}
  - {from: tenant/evil, to: kube-system/admin, port: 443}
`),
      [
        'kube-system/admin -> kube-system/dns: allowed',
        'tenant/evil -> kube-system/dns: denied',
        'kube-system/dns -> kube-system/admin: allowed',
        'tenant/evil -> kube-system/admin: denied',
      ],
    );
  });

  // Kubernetes docs "Network Policies > Behavior of to and from selectors"
  // (a namespaceSelector selects pods of the selected namespaces; peers
  // outside the cluster are reachable only through ipBlock); cilium/cilium
  // issue #46949 and PR #46996 "Policy: fix overselection for NotIn namespace
  // labels" (negative namespace selectors must still require a namespace).
  const notIn = (policy: string) => `name: notin
namespaces: {foo2: {}, bar: {}}
endpoints:
  - {name: client, namespace: bar, labels: {app: client}}
  - {name: s1, namespace: bar, labels: {app: s}}
  - {name: s2, namespace: foo2, labels: {app: s}}
outside:
  - {name: ext, ip: 203.0.113.9}
  - {name: node, entity: host}
policies:
  - |
${policy.replace(/^/gm, '    ')}
probes:
  - {from: bar/client, to: bar/s1, port: 80}
  - {from: bar/client, to: foo2/s2, port: 80}
  - {from: bar/client, to: ext, port: 80}
  - {from: bar/client, to: node, port: 80}
`;

  test(
    'a NetworkPolicy namespaceSelector with only NotIn selects pods, never world or the host',
    () => {
      assert.deepEqual(
        verdicts(
          notIn(`apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-ns-notin, namespace: bar}
spec:
  podSelector: {matchLabels: {app: client}}
  policyTypes: [Egress]
  egress:
  - to:
    - namespaceSelector:
        matchExpressions:
        - {key: kubernetes.io/metadata.name, operator: NotIn, values: [foo2]}`),
        ),
        ['bar/client -> bar/s1: allowed', 'bar/client -> foo2/s2: denied', 'bar/client -> ext: denied', 'bar/client -> node: denied'],
      );
    },
  );

  test(
    'a CNP toEndpoints with io.kubernetes.pod.namespace NotIn selects pods, never world or the host',
    () => {
      assert.deepEqual(
        verdicts(
          notIn(`apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: allow-ns-notin, namespace: bar}
spec:
  endpointSelector: {matchLabels: {app: client}}
  egress:
  - toEndpoints:
    - matchExpressions:
      - {key: io.kubernetes.pod.namespace, operator: NotIn, values: [foo2]}`),
        ),
        ['bar/client -> bar/s1: allowed', 'bar/client -> foo2/s2: denied', 'bar/client -> ext: denied', 'bar/client -> node: denied'],
      );
    },
  );
});

// Kubernetes docs "Network Policies" (policies are additive) and Cilium docs
// "Kubernetes Network Policy" (KNP and CNP apply together).
describe('NetworkPolicy and CiliumNetworkPolicy together', () => {
  test('allows of both kinds are OR-ed; a KNP rule without from allows world too', () => {
    assert.deepEqual(
      verdicts(`name: mixed
endpoints:
  - {name: web, labels: {app: web}}
  - {name: a, labels: {app: a}}
  - {name: b, labels: {app: b}}
outside:
  - {name: ext, ip: 198.51.100.7}
policies:
  - |
    apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: {name: from-a}
    spec:
      podSelector: {matchLabels: {app: web}}
      ingress: [{from: [{podSelector: {matchLabels: {app: a}}}]}, {ports: [{port: 443}]}]
  - |
    apiVersion: cilium.io/v2
    kind: CiliumNetworkPolicy
    metadata: {name: from-b}
    spec:
      endpointSelector: {matchLabels: {app: web}}
      ingress: [{fromEndpoints: [{matchLabels: {app: b}}], toPorts: [{ports: [{port: "8080", protocol: TCP}]}]}]
probes:
  - {from: a, to: web, port: 80}
  - {from: b, to: web, port: 8080}
  - {from: b, to: web, port: 80}
  - {from: ext, to: web, port: 443}
  - {from: ext, to: web, port: 80}
`),
      ['a -> web: allowed', 'b -> web: allowed', 'b -> web: denied', 'ext -> web: allowed', 'ext -> web: denied'],
    );
  });
});

// Cilium docs "Layer 3 policies > DNS based" and "Layer 7 policies > DNS
// Policy and IP Discovery" (toFQDNs allows the IPs names matching it
// resolved to; DNS rules limit the queries).
describe('DNS and toFQDNs', () => {
  const results = run(`name: fqdn
namespaces: {kube-system: {}}
endpoints:
  - {name: app, labels: {app: client}}
  - {name: dns, namespace: kube-system, labels: {k8s-app: kube-dns}}
outside:
  - {name: api, ip: 203.0.113.10, fqdns: [api.example.com]}
  - {name: other, ip: 203.0.113.11, fqdns: [other.org]}
policies:
  - |
    apiVersion: cilium.io/v2
    kind: CiliumNetworkPolicy
    metadata: {name: fqdn}
    spec:
      endpointSelector: {matchLabels: {app: client}}
      egress:
      - toEndpoints: [{matchLabels: {k8s:io.kubernetes.pod.namespace: kube-system, k8s-app: kube-dns}}]
        toPorts: [{ports: [{port: "53", protocol: ANY}], rules: {dns: [{matchPattern: "*.example.com"}]}}]
      - toFQDNs: [{matchPattern: "*.example.com"}]
        toPorts: [{ports: [{port: "443", protocol: TCP}]}]
probes:
  - {from: app, to: kube-system/dns, port: 53, protocol: UDP, dns: {query: api.example.com}}
  - {from: app, to: kube-system/dns, port: 53, protocol: UDP, dns: {query: other.org}}
  - {from: app, to: api, port: 443}
  - {from: app, to: other, port: 443}
  - {from: app, to: api, port: 80}
`);

  test('DNS queries are limited by the DNS rules', () => {
    assert.equal(results[0]!.verdict, 'allowed');
    assert.equal(results[0]!.egress?.stage, 'l7');
    assert.equal(results[1]!.verdict, 'denied');
    assert.equal(results[1]!.egress?.stage, 'l7');
  });

  test('toFQDNs allows the IPs of matching names on the listed ports', () => {
    assert.deepEqual(results.slice(2).map((r) => r.verdict), ['allowed', 'denied', 'denied']);
  });
});

describe('probe results', () => {
  test('HTTP probes carry the request as sent; identities and drop reasons are reported', () => {
    const [r80, r8080, icmp] = run(`name: http
endpoints:
  - {name: web, labels: {app: web}, ip: 10.0.0.5}
  - {name: a, labels: {app: a}}
policies:
  - |
    apiVersion: cilium.io/v2
    kind: CiliumNetworkPolicy
    metadata: {name: l7}
    spec:
      endpointSelector: {matchLabels: {app: web}}
      ingress:
      - fromEndpoints: [{matchLabels: {app: a}}]
        toPorts: [{ports: [{port: "80", protocol: TCP}, {port: "8080", protocol: TCP}], rules: {http: [{method: GET, path: /ok}]}}]
probes:
  - {from: a, to: web, port: 80, http: {path: /ok}}
  - {from: a, to: web, port: 8080, http: {method: POST, path: /ok}}
  - {from: a, to: web, protocol: ICMP}
`);
    assert.deepEqual(r80!.http, { method: 'GET', path: '/ok', host: '10.0.0.5' });
    assert.equal(r80!.verdict, 'allowed');
    assert.equal(r80!.ingress?.stage, 'l7');
    assert.deepEqual(r8080!.http, { method: 'POST', path: '/ok', host: '10.0.0.5:8080' });
    assert.equal(r8080!.verdict, 'denied');
    assert.equal(r8080!.httpStatus, 403);
    assert.equal(r8080!.dropReason, undefined);
    assert.equal(r8080!.toIdentity, FIRST_CLUSTER_IDENTITY);
    assert.equal(r8080!.fromIdentity, FIRST_CLUSTER_IDENTITY + 1);
    assert.equal(icmp!.verdict, 'denied');
    assert.equal(icmp!.dropReason, 133);
    assert.equal(icmp!.port, undefined);
    assert.deepEqual(icmp!.icmp, { type: 8 });
  });
});
