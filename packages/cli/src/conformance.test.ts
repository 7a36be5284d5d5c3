// The shared conformance corpus (../shared/conformance/policy, beside the
// repository) and the repository's own scenarios must pass through the real
// CLI, exactly as a user runs it.
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { repoRoot } from './test/paths.js';

const membrane = `${repoRoot}/bin/membrane`;
const corpus = `${repoRoot}/../shared/conformance/policy`;

function run(...args: string[]) {
  return spawnSync(membrane, args, { encoding: 'utf8' });
}

test('shared conformance corpus: every probe as expected', (t) => {
  if (!existsSync(corpus)) {
    if (process.env['CI']) assert.fail(`the shared corpus is missing at ${corpus}`);
    t.skip(`SKIPPED: no shared corpus at ${corpus}`);
    return;
  }
  const r = run('policy', 'test', corpus);
  assert.equal(r.stderr, '');
  assert.equal(r.status, 0, r.stdout);
  assert.match(r.stdout, /scenario file\(s\), \d+ probes: \d+ as expected, 0 mismatched/);
});

test("the repository's own scenarios: every probe as expected", () => {
  const r = run('policy', 'test', `${repoRoot}/examples/policy`);
  assert.equal(r.stderr, '');
  assert.equal(r.status, 0, r.stdout);
  const m = /(\d+) probes: (\d+) as expected, 0 mismatched/.exec(r.stdout);
  assert.ok(m, r.stdout);
  assert.ok(Number(m[1]) >= 40, `only ${m[1]} probes in examples/policy`);
});
