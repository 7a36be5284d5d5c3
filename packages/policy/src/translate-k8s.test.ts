// Kubernetes NetworkPolicy -> Rules. Sources: Kubernetes docs "Network
// Policies" (podSelector {} selects every pod of the namespace; a `from` item
// with namespaceSelector and podSelector is an AND, two items an OR; an empty
// namespaceSelector selects every namespace; a rule without `from` allows
// every source; protocol defaults to TCP; policyTypes defaults to Ingress plus
// Egress when egress rules exist; endPort >= port; ipBlock except within
// cidr); cilium/cilium pkg/k8s/network_policy.go (pod selectors see k8s
// labels; namespace selectors match io.cilium.k8s.namespace.labels.*).
import { strict as assert } from 'node:assert';
import { describe, test } from 'node:test';
import { ValidationError } from '@membrane/api';
import { parsePolicyDocument } from './repository.js';
import type { PeerSelector, Rule } from './rule.js';

const ref = { source: 'p.yaml', label: 'document 1' };
const np = (spec: object, namespace?: string): object => ({
  apiVersion: 'networking.k8s.io/v1',
  kind: 'NetworkPolicy',
  metadata: { name: 'np', ...(namespace ? { namespace } : {}) },
  spec,
});
function only(doc: object): Rule {
  const rules = parsePolicyDocument(doc, ref).rules;
  assert.equal(rules.length, 1);
  return rules[0]!;
}
const show = (p: PeerSelector): string =>
  p.kind === 'endpoints' ? p.selector.toString() : p.kind === 'cidr' ? `cidr:${p.text}` : p.kind === 'wildcard' ? '*' : p.kind;

function invalid(doc: object, message: string): void {
  assert.throws(
    () => parsePolicyDocument(doc, ref),
    (e: unknown) => {
      assert.ok(e instanceof ValidationError, String(e));
      assert.equal(e.code, 'MEMBRANE_E_POLICY_INVALID');
      assert.equal(e.message, message);
      return true;
    },
  );
}
const at = (where: string) => `p.yaml: document 1 (NetworkPolicy default/np): ${where}`;

describe('subject', () => {
  test('podSelector keys are Kubernetes labels in the policy namespace', () => {
    const r = only(np({ podSelector: { matchLabels: { app: 'web' } } }, 'shop'));
    assert.deepEqual(r.policy, { kind: 'NetworkPolicy', namespace: 'shop', name: 'np' });
    assert.equal(r.subject.selector.toString(), 'k8s:app=web,k8s:io.kubernetes.pod.namespace=shop');
  });

  test('podSelector {} selects every pod of the namespace', () => {
    assert.equal(only(np({ podSelector: {} })).subject.selector.toString(), 'k8s:io.kubernetes.pod.namespace=default');
  });
});

describe('peers', () => {
  test('podSelector stays in the namespace; namespaceSelector matches namespace labels; one item ANDs them', () => {
    const r = only(
      np({
        podSelector: {},
        ingress: [
          {
            from: [
              { podSelector: { matchLabels: { app: 'a' } } },
              { namespaceSelector: { matchLabels: { team: 'blue' } } },
              { namespaceSelector: { matchExpressions: [{ key: 'env', operator: 'NotIn', values: ['dev'] }] }, podSelector: { matchLabels: { app: 'b' } } },
              { namespaceSelector: {} },
              { ipBlock: { cidr: '192.0.2.0/24', except: ['192.0.2.0/28'] } },
            ],
          },
        ],
      }),
    );
    assert.deepEqual(r.ingress[0]!.peers.map(show), [
      'k8s:app=a,k8s:io.kubernetes.pod.namespace=default',
      'k8s:io.cilium.k8s.namespace.labels.team=blue',
      'k8s:app=b,k8s:io.cilium.k8s.namespace.labels.env notin (dev),k8s:io.kubernetes.pod.namespace',
      'k8s:io.kubernetes.pod.namespace',
      'cidr:192.0.2.0/24 except 192.0.2.0/28',
    ]);
  });

  test('a rule without `from` (or `to`) allows every peer', () => {
    const r = only(np({ podSelector: {}, ingress: [{}, { ports: [{ port: 80 }] }], egress: [{}] }));
    assert.deepEqual(r.ingress.map((d) => d.peers.map(show)), [['*'], ['*']]);
    assert.equal(r.ingress[0]!.ports, null, 'no ports: every port and protocol');
    assert.deepEqual(r.egress[0]!.peers.map(show), ['*']);
  });
});

describe('ports', () => {
  test('protocol defaults to TCP; a port entry without port is every port of its protocol', () => {
    const r = only(
      np({
        podSelector: {},
        ingress: [{ ports: [{ port: 80 }, { protocol: 'UDP' }, { port: 'http' }, { port: 8000, endPort: 8080, protocol: 'SCTP' }] }],
      }),
    );
    assert.deepEqual(r.ingress[0]!.ports, [
      { proto: 6, port: 80, endPort: 80 },
      { proto: 17, port: 0, endPort: 65535 },
      { proto: 6, port: 0, endPort: 0, name: 'http' },
      { proto: 132, port: 8000, endPort: 8080 },
    ]);
  });
});

describe('policyTypes', () => {
  test('omitted: Ingress, plus Egress when there are egress rules', () => {
    assert.deepEqual(only(np({ podSelector: {} })).enforces, { ingress: true, egress: false });
    assert.deepEqual(only(np({ podSelector: {}, egress: [{}] })).enforces, { ingress: true, egress: true });
  });

  test('a listed type without rules denies that direction', () => {
    const r = only(np({ podSelector: {}, policyTypes: ['Ingress', 'Egress'] }));
    assert.deepEqual(r.enforces, { ingress: true, egress: true });
    assert.deepEqual(r.defaultDeny, { ingress: true, egress: true });
    assert.deepEqual(r.egress, []);
  });

  test('rules of a direction not listed have no effect', () => {
    const r = only(np({ podSelector: {}, policyTypes: ['Egress'], ingress: [{}], egress: [{ to: [{ podSelector: {} }] }] }));
    assert.deepEqual(r.enforces, { ingress: false, egress: true });
    assert.deepEqual(r.ingress, []);
    assert.equal(r.egress.length, 1);
  });
});

describe('validation', () => {
  test('ports', () => {
    invalid(np({ podSelector: {}, ingress: [{ ports: [{ port: 80, endPort: 70 }] }] }), at('spec.ingress[0].ports[0].endPort: 70 is below port 80'));
    invalid(np({ podSelector: {}, ingress: [{ ports: [{ port: 0 }] }] }), at('spec.ingress[0].ports[0].port: 0 is not a valid port number (1-65535)'));
    invalid(np({ podSelector: {}, egress: [{ ports: [{ port: 'http', endPort: 90 }] }] }), at('spec.egress[0].ports[0].endPort: may only be used with a numeric port'));
  });

  test('ipBlock', () => {
    invalid(
      np({ podSelector: {}, ingress: [{ from: [{ ipBlock: { cidr: '10.0.0.0/8', except: ['192.168.0.0/16'] } }] }] }),
      at('spec.ingress[0].from[0].ipBlock.except[0]: 192.168.0.0/16 is not within 10.0.0.0/8'),
    );
    invalid(
      np({ podSelector: {}, egress: [{ to: [{ ipBlock: { cidr: '10.0.0.1' } }] }] }),
      at('spec.egress[0].to[0].ipBlock.cidr: "10.0.0.1" is not a CIDR (expected address/prefix-length, e.g. 10.0.0.0/8)'),
    );
    invalid(
      np({ podSelector: {}, ingress: [{ from: [{ ipBlock: { cidr: '10.0.0.0/8' }, podSelector: {} }] }] }),
      at('spec.ingress[0].from[0]: ipBlock may not be combined with podSelector or namespaceSelector'),
    );
  });

  test('peers and selectors', () => {
    invalid(np({ podSelector: {}, ingress: [{ from: [{}] }] }), at('spec.ingress[0].from[0]: must specify at least one of podSelector, namespaceSelector or ipBlock'));
    invalid(
      np({ podSelector: { matchExpressions: [{ key: 'app', operator: 'In' }] } }),
      at('spec.podSelector.matchExpressions[0].values: must not be empty when operator is In'),
    );
    invalid(np({ podSelector: {}, policyTypes: ['ingress'] }), at('spec.policyTypes[0]: "ingress" is not one of Ingress, Egress'));
  });
});
