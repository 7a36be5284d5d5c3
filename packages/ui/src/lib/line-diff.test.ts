import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { lineDiff } from './line-diff.js';

test('a line diff keeps what is common and marks what went and came', () => {
  const d = lineDiff('a\nb\nc\nd', 'a\nc\nx\nd');
  assert.deepEqual(d.map((l) => `${l.op}${l.text}`), [' a', '-b', ' c', '+x', ' d']);
  assert.deepEqual(lineDiff('same', 'same').map((l) => l.op), [' ']);
  assert.deepEqual(lineDiff('', 'new').map((l) => `${l.op}${l.text}`), ['-', '+new']);
});
