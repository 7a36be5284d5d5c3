// Repository: the policies in force. Sources: kubectl apply semantics
// (created / configured / unchanged; the same object re-applied is
// unchanged); cilium/cilium pkg/policy/repository.go (a revision that moves on
// every change; rules replaced per policy); the project rule "validate
// everything first, then apply everything" (shared/style.md, Errors).
import { strict as assert } from 'node:assert';
import { describe, test } from 'node:test';
import { ValidationError } from '@membrane/api';
import { Repository, canonicalJSON, parsePolicyDocument } from './repository.js';

const ref = { source: 'p.yaml', label: 'document 1' };
const cnp = (name: string, spec: object, extra: object = {}) =>
  parsePolicyDocument({ apiVersion: 'cilium.io/v2', kind: 'CiliumNetworkPolicy', metadata: { name, ...extra }, spec }, ref);

describe('parsePolicyDocument', () => {
  test('a namespaced policy without a namespace takes the default namespace given', () => {
    const p = parsePolicyDocument({ apiVersion: 'cilium.io/v2', kind: 'CiliumNetworkPolicy', metadata: { name: 'x' }, spec: { endpointSelector: {} } }, ref, 'dev');
    assert.deepEqual(p.ref, { kind: 'CiliumNetworkPolicy', name: 'x', namespace: 'dev' });
    assert.equal(p.fingerprint, '{"kind":"CiliumNetworkPolicy","metadata":{"name":"x","namespace":"dev"},"spec":{"endpointSelector":{}}}');
  });

  test('manifest errors name the document, the field and the reason', () => {
    const cases: [object, string, string][] = [
      [
        { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'x' } },
        'MEMBRANE_E_MANIFEST_INVALID',
        'p.yaml: document 1: kind: "Pod" is not a supported kind (supported: CiliumNetworkPolicy, CiliumClusterwideNetworkPolicy, NetworkPolicy)',
      ],
      [
        { apiVersion: 'cilium.io/v1', kind: 'CiliumNetworkPolicy', metadata: { name: 'x' }, spec: {} },
        'MEMBRANE_E_POLICY_INVALID',
        'p.yaml: document 1 (CiliumNetworkPolicy default/x): apiVersion: "cilium.io/v1" does not serve kind CiliumNetworkPolicy (use cilium.io/v2)',
      ],
      [
        { apiVersion: 'cilium.io/v2', kind: 'CiliumNetworkPolicy', metadata: { name: 'x' } },
        'MEMBRANE_E_POLICY_INVALID',
        'p.yaml: document 1 (CiliumNetworkPolicy default/x): spec: is required (a policy needs spec or specs)',
      ],
      [
        { apiVersion: 'cilium.io/v2', kind: 'CiliumNetworkPolicy', metadata: { name: 'x' }, spec: { endpointSelector: {}, ingres: [{}] } },
        'MEMBRANE_E_POLICY_INVALID',
        'p.yaml: document 1 (CiliumNetworkPolicy default/x): spec.ingres: unknown field "ingres"',
      ],
    ];
    for (const [doc, code, message] of cases) {
      assert.throws(
        () => parsePolicyDocument(doc, ref),
        (e: unknown) => {
          assert.ok(e instanceof ValidationError);
          assert.equal(e.code, code);
          assert.equal(e.message, message);
          return true;
        },
      );
    }
  });
});

describe('Repository', () => {
  const a1 = cnp('a', { endpointSelector: {}, ingress: [{}] });
  const a1Reordered = parsePolicyDocument(
    { spec: { ingress: [{}], endpointSelector: {} }, metadata: { name: 'a' }, kind: 'CiliumNetworkPolicy', apiVersion: 'cilium.io/v2' },
    ref,
  );
  const a2 = cnp('a', { endpointSelector: {}, egress: [{}] });
  const b = cnp('b', { endpointSelector: {}, ingress: [{}] });

  test('apply reports created, configured and unchanged like kubectl; the revision moves on change only', () => {
    const repo = new Repository();
    assert.equal(repo.revision, 0);
    assert.deepEqual(repo.apply([a1, b]), { created: [a1.ref, b.ref], configured: [], unchanged: [] });
    assert.equal(repo.revision, 1);
    assert.deepEqual(repo.apply([a1Reordered]), { created: [], configured: [], unchanged: [a1.ref] }, 'key order does not matter');
    assert.equal(repo.revision, 1);
    assert.deepEqual(repo.apply([a2]), { created: [], configured: [a2.ref], unchanged: [] });
    assert.equal(repo.revision, 2);
    assert.equal(repo.get(a1.ref), a2);
    assert.deepEqual(repo.rules().map((r) => [r.policy.name, r.enforces.egress]), [['a', true], ['b', false]]);
  });

  test('delete removes known policies only', () => {
    const repo = new Repository();
    repo.apply([a1, b]);
    assert.deepEqual(repo.delete([a1.ref, { kind: 'CiliumNetworkPolicy', namespace: 'default', name: 'zzz' }]), [a1.ref]);
    assert.equal(repo.revision, 2);
    assert.deepEqual(repo.delete([{ kind: 'CiliumNetworkPolicy', namespace: 'default', name: 'zzz' }]), []);
    assert.equal(repo.revision, 2);
    assert.deepEqual(repo.list().map((p) => p.ref.name), ['b']);
    assert.deepEqual(repo.rules().map((r) => r.policy.name), ['b']);
  });

  test('the same name twice in one batch is refused and nothing is applied', () => {
    const repo = new Repository();
    repo.apply([b]);
    assert.throws(() => repo.apply([a1, a2]), { message: 'CiliumNetworkPolicy default/a appears twice in one apply' });
    assert.deepEqual(repo.list().map((p) => p.ref.name), ['b']);
    assert.equal(repo.revision, 1);
  });

  test('policies of the same name in different namespaces or kinds are distinct', () => {
    const repo = new Repository();
    const other = cnp('a', { endpointSelector: {}, ingress: [{}] }, { namespace: 'other' });
    const knp = parsePolicyDocument({ apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: 'a' }, spec: { podSelector: {} } }, ref);
    assert.equal(repo.apply([a1, other, knp]).created.length, 3);
  });
});

describe('canonicalJSON', () => {
  test('sorted keys, undefined dropped, arrays kept in order', () => {
    assert.equal(canonicalJSON({ b: 1, a: [{ d: 2, c: undefined }, 'x'] }), '{"a":[{"d":2},"x"],"b":1}');
    assert.equal(canonicalJSON(undefined), 'null');
  });
});
