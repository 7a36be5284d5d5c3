import { strict as assert } from 'node:assert';
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { LogSizes, tailLines } from './kube-logs.js';

test('tailLines counts lines from the end, with or without a final newline', () => {
  const t = (s: string, n: number) => tailLines(Buffer.from(s), n).toString();
  assert.equal(t('a\nb\nc\n', 2), 'b\nc\n');
  assert.equal(t('a\nb\nc', 2), 'b\nc');
  assert.equal(t('a\nb\n', 5), 'a\nb\n');
  assert.equal(t('a\nb\n', 0), '');
});

test('LogSizes answers the size a file had at a time, from its samples', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mbr-logs-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const f = join(dir, 'x.log');
  writeFileSync(f, 'one\n');
  const s = new LogSizes(() => [f]);
  s.sample(1000);
  appendFileSync(f, 'two\n');
  s.sample(2000);
  appendFileSync(f, 'three\n');
  s.sample(3000);
  assert.equal(s.sizeAt(f, 500), 0, 'before the first sample: all of it');
  assert.equal(s.sizeAt(f, 1500), 4);
  assert.equal(s.sizeAt(f, 2000), 8);
  assert.equal(s.sizeAt(f, 9000), 14);
});
