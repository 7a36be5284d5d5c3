import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { jsonMergePatch, jsonPatch, PatchError, strategicMergePatch } from './kube-merge.js';
import { conflictMessage, serverSideApply } from './kube-fields.js';

test('JSON merge patch (RFC 7386): null removes, objects merge, lists replace', () => {
  assert.deepEqual(jsonMergePatch({ a: 'b', c: { d: 'e', f: 'g' } }, { a: 'z', c: { f: null } }), { a: 'z', c: { d: 'e' } });
  assert.deepEqual(jsonMergePatch({ a: [1, 2] }, { a: [3] }), { a: [3] });
});

test('JSON patch (RFC 6902): add, replace, remove, and a failed test refuses the whole patch', () => {
  assert.deepEqual(jsonPatch({ a: [1] }, [{ op: 'add', path: '/a/-', value: 2 }, { op: 'add', path: '/b', value: 1 }, { op: 'remove', path: '/a/0' }]), { a: [2], b: 1 });
  assert.throws(() => jsonPatch({ a: 1 }, [{ op: 'test', path: '/a', value: 2 }]), PatchError);
});

test('strategic merge patch: containers merge by name, $patch delete, $setElementOrder orders', () => {
  const pod = { spec: { containers: [{ name: 'a', image: 'x' }, { name: 'b', image: 'y' }] } };
  const merged = strategicMergePatch(pod, { spec: { containers: [{ name: 'b', image: 'z' }, { name: 'c', image: 'w' }], '$setElementOrder/containers': [{ name: 'c' }, { name: 'a' }, { name: 'b' }] } }, 'Pod') as typeof pod;
  assert.deepEqual(merged.spec.containers, [{ name: 'c', image: 'w' }, { name: 'a', image: 'x' }, { name: 'b', image: 'z' }]);
  const deleted = strategicMergePatch(pod, { spec: { containers: [{ name: 'a', $patch: 'delete' }] } }, 'Pod') as typeof pod;
  assert.deepEqual(deleted.spec.containers, [{ name: 'b', image: 'y' }]);
  const svc = strategicMergePatch({ spec: { ports: [{ port: 80, name: 'http' }], selector: { a: 'b' } } }, { spec: { ports: [{ port: 443 }], selector: { a: null } } }, 'Service');
  assert.deepEqual(svc, { spec: { ports: [{ port: 80, name: 'http' }, { port: 443 }], selector: {} } });
  assert.deepEqual(strategicMergePatch({ spec: { x: { a: 1, b: 2 } } }, { spec: { x: { $retainKeys: ['a'], a: 3 } } }, 'Pod'), { spec: { x: { a: 3 } } });
});

test('server-side apply: owns what it applies, lets go of what it stops applying, conflicts with another manager', () => {
  const now = '2026-12-02T00:00:00Z';
  const cfg = (d: string, extra: Record<string, unknown> = {}) => ({ apiVersion: 'cilium.io/v2', kind: 'CiliumNetworkPolicy', metadata: { name: 'r', namespace: 'default', ...extra }, spec: { description: d } });
  const created = serverSideApply({ live: undefined, applied: cfg('a', { labels: { x: 'y' } }), kind: 'CiliumNetworkPolicy', apiVersion: 'cilium.io/v2', manager: 'kubectl', force: false, now });
  assert.deepEqual(created.conflicts, []);
  const again = serverSideApply({ live: created.object, applied: cfg('a'), kind: 'CiliumNetworkPolicy', apiVersion: 'cilium.io/v2', manager: 'kubectl', force: false, now });
  assert.equal((again.object['metadata'] as Record<string, unknown>)['labels'], undefined, 'the label it stopped applying is gone');
  const other = serverSideApply({ live: again.object, applied: cfg('b'), kind: 'CiliumNetworkPolicy', apiVersion: 'cilium.io/v2', manager: 'other', force: false, now });
  assert.deepEqual(other.conflicts, [{ manager: 'kubectl', field: '.spec.description' }]);
  assert.equal(conflictMessage(other.conflicts, 'cilium.io/v2'), 'Apply failed with 1 conflict: conflict with "kubectl" using cilium.io/v2: .spec.description');
  const forced = serverSideApply({ live: again.object, applied: cfg('b'), kind: 'CiliumNetworkPolicy', apiVersion: 'cilium.io/v2', manager: 'other', force: true, now });
  assert.equal((forced.object['spec'] as Record<string, unknown>)['description'], 'b');
  const same = serverSideApply({ live: again.object, applied: cfg('a'), kind: 'CiliumNetworkPolicy', apiVersion: 'cilium.io/v2', manager: 'other', force: false, now });
  assert.deepEqual(same.conflicts, [], 'the same value is shared, not a conflict');
});
