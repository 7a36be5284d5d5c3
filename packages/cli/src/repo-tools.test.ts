// The repository's own tools: the import-rule check (design.md section 2)
// and bench/policy-scale's output contract (shared/spec/cli.md). The
// privileged benchmarks' smoke runs are in packages/testkit.
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { repoRoot } from './test/paths.js';

function checkImports(dir: string) {
  return spawnSync(process.execPath, [`${repoRoot}/scripts/check-imports.mjs`, dir], { encoding: 'utf8' });
}

function tree(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'mbr-imports-'));
  for (const [p, text] of Object.entries(files)) {
    mkdirSync(join(dir, p, '..'), { recursive: true });
    writeFileSync(join(dir, p), text);
  }
  return dir;
}

test('check-imports passes on the repository', () => {
  const r = checkImports(repoRoot);
  assert.equal(r.status, 0, r.stderr);
});

test('check-imports rejects node:* in the policy package and a forbidden package edge', (t) => {
  const dir = tree({
    'packages/policy/src/bad.ts': "import { readFileSync } from 'node:fs';\nexport const x = readFileSync;\n",
    'packages/policy/src/ok.test.ts': "import { test } from 'node:test';\n",
    'packages/api/src/edge.ts': "import { x } from '@membrane/policy';\nexport { x };\n",
  });
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const r = checkImports(dir);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /packages\/policy\/src\/bad\.ts: package policy must run in a browser and may not import node:fs/);
  assert.match(r.stderr, /packages\/api\/src\/edge\.ts: package api may not import @membrane\/policy \(allowed: none\)/);
  assert.doesNotMatch(r.stderr, /ok\.test\.ts/);
});

test('bench/policy-scale --quick prints the figures cli.md names, last line JSON', () => {
  const r = spawnSync(`${repoRoot}/bench/policy-scale`, ['--quick'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const last = r.stdout.trim().split('\n').pop()!;
  const j = JSON.parse(last) as { bench: string; figures: Record<string, number>; config: unknown };
  assert.equal(j.bench, 'policy-scale');
  for (const n of [10, 100, 1000]) for (const m of [100, 1000]) assert.equal(typeof j.figures[`resolve_ms_${n}x${m}`], 'number');
  // Resolution is near-linear (today ~8 per 10x): a bound far from that still catches a quadratic turn.
  assert.ok(j.figures['growth_ratio_max']! > 0 && j.figures['growth_ratio_max']! < 60, `growth_ratio_max ${j.figures['growth_ratio_max']}`);
});

