import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { inCI, requireRoot } from './privileged.js';

test('the root gate: runs as root, skips loudly outside CI, fails in CI', (t) => {
  assert.equal(requireRoot(t, 'x', {}, true), true);
  assert.equal(inCI({ CI: 'true' }), true);
  assert.equal(inCI({ CI: '1' }), true);
  assert.equal(inCI({ CI: 'false' }), false);
  assert.equal(inCI({}), false);
  assert.throws(() => requireRoot(t, 'BPF programs', { CI: 'true' }, false), /privileged test cannot run in CI without root \(CI=true\): needs root .*: BPF programs/);
});

test('the root gate outside CI skips (this subtest is reported as skipped)', (t) => {
  assert.equal(requireRoot(t, 'nothing', {}, false), false);
});
