import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { createMemoryStore } from '../store/index.js';
import { PolicyHistory } from './policy-history.js';

const body = (v: number) => ({ apiVersion: 'cilium.io/v2', kind: 'CiliumNetworkPolicy', metadata: { name: 'rule1', namespace: 'default' }, spec: { description: `v${v}`, endpointSelector: {} } });

test('policy versions: created and configured as stored, deleted, newest first, kept across a reload, bounded', async () => {
  const store = createMemoryStore();
  const h = new PolicyHistory(store, 3);
  await h.load();
  const ref = { kind: 'CiliumNetworkPolicy', namespace: 'default', name: 'rule1' };
  await store.put({ ...ref, body: body(1) });
  await h.applied({ results: [{ ...ref, action: 'created' }, { kind: 'Pod', namespace: 'default', name: 'x', action: 'created' }] });
  await store.put({ ...ref, body: body(2) });
  await h.applied({ results: [{ ...ref, action: 'configured' }] });
  await h.applied({ results: [{ ...ref, action: 'unchanged' }] });
  assert.deepEqual(h.list(ref).map((v) => [v.action, (v.body as { spec: { description: string } }).spec.description]), [['configured', 'v2'], ['created', 'v1']], 'pods and unchanged applies are no versions');
  await h.deleted({ results: [{ ...ref, action: 'deleted' }] });
  const again = new PolicyHistory(store, 3);
  await again.load();
  assert.deepEqual(again.list(ref).map((v) => v.action), ['deleted', 'configured', 'created'], 'kept in the store');
  await store.put({ ...ref, body: body(3) });
  await again.applied({ results: [{ ...ref, action: 'created' }] });
  assert.deepEqual(again.list().map((v) => v.id), [4, 3, 2], 'the oldest goes beyond the bound; ids keep counting');
  assert.deepEqual(again.list({ name: 'other' }), []);
});
