import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { withServerFields } from './server-fields.js';

const cnp = (description: string, extra: Record<string, unknown> = {}) => ({ apiVersion: 'cilium.io/v2', kind: 'CiliumNetworkPolicy', metadata: { name: 'rule1', namespace: 'default', ...extra }, spec: { description } });

test('a printed object re-applied is unchanged: the client copies of server fields are dropped', () => {
  const first = withServerFields(cnp('a'), undefined);
  assert.equal(first.same, false);
  assert.equal(first.body.metadata!['generation'], 1);
  const printed = cnp('a', { resourceVersion: '42', uid: 'x', creationTimestamp: '2026-01-01T00:00:00Z', selfLink: '/x', generation: 7 });
  const again = withServerFields(printed, first.body);
  assert.equal(again.same, true);
  assert.deepEqual(Object.keys(again.body.metadata!).sort(), ['generation', 'name', 'namespace']);
});

test('generation counts content changes, not metadata changes', () => {
  const g1 = withServerFields(cnp('a'), undefined).body;
  const labelled = withServerFields(cnp('a', { labels: { x: 'y' } }), g1);
  assert.equal(labelled.same, false);
  assert.equal(labelled.body.metadata!['generation'], 1);
  const changed = withServerFields(cnp('b', { labels: { x: 'y' } }), labelled.body);
  assert.equal(changed.body.metadata!['generation'], 2);
});

test('managedFields are kept when a write brings none, replaced when it brings them', () => {
  const mf = [{ manager: 'kubectl', operation: 'Apply' }];
  const stored = withServerFields(cnp('a', { managedFields: mf }), undefined).body;
  const plain = withServerFields(cnp('a'), stored);
  assert.equal(plain.same, true);
  assert.deepEqual(plain.body.metadata!['managedFields'], mf);
  const other = withServerFields(cnp('a', { managedFields: [{ manager: 'm', operation: 'Update' }] }), stored);
  assert.equal(other.same, false);
});

test('an object stored before generations were kept stays unchanged on the same apply', () => {
  const old = cnp('a');
  assert.equal(withServerFields(cnp('a'), old).same, true);
  assert.equal(withServerFields(cnp('b'), old).body.metadata!['generation'], 2);
});
