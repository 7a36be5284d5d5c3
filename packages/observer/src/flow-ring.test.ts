import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { FlowRing } from './flow-ring.js';

test('the ring keeps the last `capacity` flows with their sequence numbers; a reader overtaken learns how many it missed', () => {
  const r = new FlowRing<string>(3);
  const seen: number[] = [];
  const off = r.onPush(() => seen.push(r.seen));
  for (const x of ['a', 'b', 'c', 'd', 'e']) r.push(x);
  off();
  r.push('f');
  assert.deepEqual([r.seen, r.size, r.oldest], [6, 3, 3]);
  assert.deepEqual(seen, [1, 2, 3, 4, 5], 'told of every push while subscribed');
  assert.deepEqual(r.read(0), { items: [{ seq: 3, value: 'd' }, { seq: 4, value: 'e' }, { seq: 5, value: 'f' }], next: 6, lost: 3 });
  assert.deepEqual(r.read(4, 1), { items: [{ seq: 4, value: 'e' }], next: 5, lost: 0 });
  assert.deepEqual(r.read(6), { items: [], next: 6, lost: 0 });
  assert.equal(r.at(2), undefined);
  assert.equal(r.at(5), 'f');
  assert.throws(() => new FlowRing(0), RangeError);
});

test('insert stays O(1): a million pushes into a small ring', () => {
  const r = new FlowRing<number>(1024);
  const t0 = performance.now();
  for (let i = 0; i < 1_000_000; i++) r.push(i);
  assert.equal(r.at(999_999), 999_999);
  assert.ok(performance.now() - t0 < 5000);
});
