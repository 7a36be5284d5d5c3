// Scenario files: the format of /work/shared/spec/policy-scenarios.md as
// read by parseScenario. Errors name the file, the document and the field
// (shared/style.md, Errors).
import { strict as assert } from 'node:assert';
import { describe, test } from 'node:test';
import { MembraneError } from '@membrane/api';
import { parseScenario } from './scenario.js';

function fails(text: string, code: string, message: string): void {
  assert.throws(
    () => parseScenario(text, 's.yaml'),
    (e: unknown) => {
      assert.ok(e instanceof MembraneError, String(e));
      assert.equal(e.code, code);
      assert.equal(e.message, message);
      return true;
    },
  );
}

describe('parseScenario', () => {
  test('defaults: namespace default, protocol TCP, ICMP echo request; namespaces gathered', () => {
    const s = parseScenario(
      `name: basics
namespaces: {prod: {labels: {team: blue}}}
endpoints:
  - {name: a, labels: {app: a}}
  - {name: b, namespace: other, ip: 10.0.0.2, serviceAccount: robot}
outside:
  - {name: ext, ip: 192.0.2.1, fqdns: [api.example.com]}
  - {name: node, entity: host}
policies:
  - |
    apiVersion: cilium.io/v2
    kind: CiliumNetworkPolicy
    metadata: {name: p, namespace: third}
    spec: {endpointSelector: {}, ingress: [{}]}
probes:
  - {from: a, to: other/b, port: 80, expect: denied}
  - {from: default/a, to: ext, protocol: ICMP}
  - {from: a, to: other/b, port: 8080, http: {path: /x}}
`,
      's.yaml',
    );
    assert.equal(s.name, 'basics');
    assert.deepEqual(s.endpoints, [
      { name: 'a', namespace: 'default', labels: { app: 'a' } },
      { name: 'b', namespace: 'other', labels: {}, ip: '10.0.0.2', serviceAccount: 'robot' },
    ]);
    assert.deepEqual(s.outside, [
      { name: 'ext', ip: '192.0.2.1', fqdns: ['api.example.com'] },
      { name: 'node', entity: 'host' },
    ]);
    assert.deepEqual(Object.keys(s.namespaces).sort(), ['default', 'other', 'prod', 'third']);
    assert.deepEqual(s.namespaces['prod'], { labels: { team: 'blue' } });
    assert.deepEqual(s.probes, [
      { index: 0, from: 'a', to: 'other/b', port: 80, protocol: 'TCP', expect: 'denied' },
      { index: 1, from: 'default/a', to: 'ext', protocol: 'ICMP', icmp: { type: 8 } },
      { index: 2, from: 'a', to: 'other/b', port: 8080, protocol: 'TCP', http: { path: '/x' } },
    ]);
    assert.equal(s.policies.length, 1);
    assert.deepEqual(s.policies[0]!.ref, { kind: 'CiliumNetworkPolicy', name: 'p', namespace: 'third' });
  });

  test('scenario errors', () => {
    fails('name: a\n---\nname: b\n', 'MEMBRANE_E_SCENARIO_INVALID', 's.yaml: a scenario file holds exactly one YAML document (found 2)');
    fails(
      'name: x\nendpoints: [{name: a}]\npolicies: []\nprobes: [{from: a, to: nope, port: 80}, {from: a, to: a}]\n',
      'MEMBRANE_E_SCENARIO_INVALID',
      's.yaml: scenario: probes[0].to: "nope" is neither an endpoint (namespace/name) nor an outside peer (and 1 more problem)',
    );
    fails(
      'name: x\nendpoints: [{name: a, ip: 10.0.0.1}, {name: b, ip: 10.0.0.1}]\npolicies: []\nprobes: []\n',
      'MEMBRANE_E_SCENARIO_INVALID',
      's.yaml: scenario: endpoints[1].ip: 10.0.0.1 is already the IP of default/a',
    );
    fails('name: x\nendpoints: [{name: a}]\noutside: [{name: o}]\npolicies: []\nprobes: []\n', 'MEMBRANE_E_SCENARIO_INVALID', 's.yaml: scenario: outside[0]: needs an ip or an entity');
    fails(
      'name: x\nendpoints: [{name: a}]\npolicies: []\nprobes: [{from: a, to: a, protocol: ICMP, port: 1}]\n',
      'MEMBRANE_E_SCENARIO_INVALID',
      's.yaml: scenario: probes[0].port: ICMP probes take no port (use icmp.type)',
    );
  });

  test('a policy error names the policy item', () => {
    fails(
      `name: x
endpoints: [{name: a}]
policies:
  - |
    apiVersion: cilium.io/v2
    kind: CiliumNetworkPolicy
    metadata: {name: p}
    spec: {endpointSelector: {}, ingress: [{fromCIDR: [bad]}]}
probes: []
`,
      'MEMBRANE_E_POLICY_INVALID',
      's.yaml: policies[0] (CiliumNetworkPolicy default/p): spec.ingress[0].fromCIDR[0]: "bad" is not an IP address or CIDR',
    );
  });

  test('the same policy twice is refused', () => {
    const p = '{apiVersion: cilium.io/v2, kind: CiliumNetworkPolicy, metadata: {name: p}, spec: {endpointSelector: {}}}';
    fails(
      `name: x\nendpoints: [{name: a}]\npolicies: [${p}, ${p}]\nprobes: []\n`,
      'MEMBRANE_E_POLICY_INVALID',
      's.yaml: policies[1] (CiliumNetworkPolicy default/p): metadata.name: the same policy is already defined by policies[0]',
    );
  });
});
