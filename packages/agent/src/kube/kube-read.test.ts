import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import type { KubeObject } from './kube-cache.js';
import { fieldMatcher, labelMatcher, page, parsePath } from './kube-read.js';

test('subresources are part of the path: pods/NAME/exec, pods/NAME/log, */status', () => {
  assert.equal(parsePath('/api/v1/namespaces/default/pods/xwing/exec')?.subresource, 'exec');
  assert.equal(parsePath('/api/v1/namespaces/default/pods/xwing/log')?.subresource, 'log');
  assert.equal(parsePath('/apis/cilium.io/v2/namespaces/default/ciliumnetworkpolicies/rule1/status')?.subresource, 'status');
  assert.equal(parsePath('/api/v1/namespaces/default/services/x/exec'), undefined);
  assert.equal(parsePath('/api/v1/namespaces/default/pods/x/log/more'), undefined);
});

test('set-based label selectors: in, notin, commas inside the set', () => {
  const m = labelMatcher('class in (xwing, tiefighter),org notin (alliance),!debug')!;
  assert.equal(m({ class: 'tiefighter', org: 'empire' }), true);
  assert.equal(m({ class: 'xwing', org: 'alliance' }), false);
  assert.equal(m({ class: 'deathstar' }), false);
  assert.equal(m({ class: 'xwing', debug: '' }), false);
  assert.equal(labelMatcher('a in b'), undefined);
});

test('field selectors per kind; an unknown field is named', () => {
  const ev = { metadata: { name: 'e', namespace: 'default' }, involvedObject: { kind: 'Pod', name: 'xwing', uid: 'u1' }, reason: 'Started' } as KubeObject;
  const m = fieldMatcher('Event', 'involvedObject.name=xwing,involvedObject.uid=u1,reason!=Failed');
  assert.equal(typeof m, 'function');
  assert.equal((m as (o: KubeObject) => boolean)(ev), true);
  assert.equal(fieldMatcher('Pod', 'involvedObject.name=x'), 'involvedObject.name');
  const phase = fieldMatcher('Pod', 'status.phase=Running') as (o: KubeObject) => boolean;
  assert.equal(phase({ metadata: { name: 'p' }, status: { phase: 'Running' } }), true);
});

test('pages: limit and continue walk the list in namespace then name order', () => {
  const items = ['c', 'a', 'b', 'e', 'd'].map((name) => ({ metadata: { name, namespace: 'default' } }));
  const first = page(items, 2, null, 7);
  assert.ok(first !== 'expired');
  assert.deepEqual(first.items.map((o) => o.metadata.name), ['a', 'b']);
  assert.equal(first.remaining, 3);
  const second = page(items, 2, first.next!, 7);
  assert.ok(second !== 'expired');
  assert.deepEqual(second.items.map((o) => o.metadata.name), ['c', 'd']);
  const last = page(items, 2, second.next!, 7);
  assert.ok(last !== 'expired');
  assert.deepEqual(last.items.map((o) => o.metadata.name), ['e']);
  assert.equal(last.next, undefined);
  assert.equal(page(items, 2, 'not-a-token', 7), 'expired');
});
