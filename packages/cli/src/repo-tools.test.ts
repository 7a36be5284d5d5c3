// The repository's own tools: the import-rule check (design.md section 2)
// and the benchmarks' output contracts (shared/spec/cli.md).
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
  assert.ok(j.figures['growth_ratio_max']! > 0);
});

test('bench/datapath --quick prints the figures cli.md names, last line JSON', { timeout: 180_000 }, (t) => {
  if (process.geteuid?.() !== 0) {
    t.skip('SKIPPED: bench/datapath needs root (CAP_BPF/CAP_NET_ADMIN): run as root');
    return;
  }
  const r = spawnSync(`${repoRoot}/bench/datapath`, ['--quick'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const j = JSON.parse(r.stdout.trim().split('\n').pop()!) as { bench: string; figures: Record<string, number> };
  assert.equal(j.bench, 'datapath');
  for (const k of ['rr_latency_ratio', 'rr_p99_ratio', 'conn_rate_ratio', 'apply_to_enforced_ms_1', 'apply_to_enforced_ms_100', 'apply_to_enforced_ms_1000']) {
    assert.equal(typeof j.figures[k], 'number', k);
    assert.ok(j.figures[k]! > 0, `${k} = ${j.figures[k]}`);
  }
  assert.equal(j.figures['events_lost'], 0);
});

test('bench/agent --quick prints the figures cli.md names, last line JSON', { timeout: 300_000 }, (t) => {
  if (process.geteuid?.() !== 0) {
    t.skip('SKIPPED: bench/agent needs root (CAP_BPF/CAP_NET_ADMIN): run as root');
    return;
  }
  const r = spawnSync(`${repoRoot}/bench/agent`, ['--quick'], { encoding: 'utf8', timeout: 280_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.doesNotMatch(r.stderr, /left behind/);
  const j = JSON.parse(r.stdout.trim().split('\n').pop()!) as { bench: string; figures: Record<string, number>; config: Record<string, unknown> };
  assert.equal(j.bench, 'agent');
  for (const k of ['pods_started_per_s', 'agent_rss_mb_per_100_endpoints', 'apply_to_enforced_ms_1', 'apply_to_enforced_ms_100', 'apply_to_enforced_ms_1000']) {
    assert.equal(typeof j.figures[k], 'number', k);
    assert.ok(Number.isFinite(j.figures[k]), `${k} = ${j.figures[k]}`);
  }
  for (const k of ['pods_started_per_s', 'apply_to_enforced_ms_1', 'apply_to_enforced_ms_100', 'apply_to_enforced_ms_1000']) assert.ok(j.figures[k]! > 0, `${k} = ${j.figures[k]}`);
  // `membrane apply -o json` carries the agent's own enforcement time.
  for (const n of [1, 100, 1000]) assert.ok(j.figures[`agent_enforced_ms_${n}`]! > 0, `agent_enforced_ms_${n}`);
  assert.equal(j.config['quick'], true);
});
