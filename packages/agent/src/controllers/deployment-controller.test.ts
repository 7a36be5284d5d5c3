import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import type { Deployment } from '@membrane/api';
import { canonicalJSON } from '@membrane/policy';
import { reconcileDeployment } from './deployment-controller.js';

const d = (replicas: number, label = 'a'): Deployment => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name: 'web', namespace: 'prod' },
  spec: { replicas, selector: { matchLabels: { app: label } }, template: { metadata: { labels: { app: label } }, spec: { containers: [{ name: 'c', command: ['sleep', '1'] }] } } },
});

test('reconcileDeployment: makes the missing pods, drops the surplus, replaces outdated and failed ones', () => {
  let n = 0;
  const names = () => `x${n++}`.padEnd(5, '0');
  const t = canonicalJSON(d(1).spec.template);
  const fresh = reconcileDeployment(d(2), [], () => false, names);
  assert.deepEqual(fresh.create.map((p) => p.metadata.name), ['web-x0000', 'web-x1000']);
  assert.equal(fresh.create[0]!.metadata.namespace, 'prod');
  assert.deepEqual(fresh.create[0]!.metadata.labels, { app: 'a' });
  assert.equal(fresh.create[0]!.spec.restartPolicy, 'Always');
  assert.deepEqual((fresh.create[0]!.metadata as { ownerReferences?: unknown }).ownerReferences, [{ apiVersion: 'apps/v1', kind: 'Deployment', name: 'web' }]);
  const three = [{ name: 'p1', template: t, cannotRun: false }, { name: 'p2', template: t, cannotRun: false }, { name: 'p3', template: t, cannotRun: false }];
  assert.deepEqual(reconcileDeployment(d(1), three).remove, ['p3', 'p2']);
  const outdated = reconcileDeployment(d(2, 'b'), three.slice(0, 2), () => false, names);
  assert.deepEqual(outdated.remove, ['p1', 'p2']);
  assert.equal(outdated.create.length, 2);
  const failed = reconcileDeployment(d(2), [three[0]!, { ...three[1]!, cannotRun: true }], () => false, names);
  assert.deepEqual(failed.remove, ['p2']);
  assert.equal(failed.create.length, 1);
  const taken = reconcileDeployment(d(1), [], (name) => name === 'web-x6000', () => (n++ === 6 ? 'x6000' : 'x7000'));
  assert.deepEqual(taken.create.map((p) => p.metadata.name), ['web-x7000'], 'a name in use is not given again');
  // The same template with its keys in another order (as the store gives it back) is the same template.
  const reordered = d(2);
  reordered.spec.template = JSON.parse(JSON.stringify({ spec: reordered.spec.template.spec, metadata: reordered.spec.template.metadata }));
  assert.deepEqual(reconcileDeployment(reordered, three.slice(0, 2)).remove, []);
});
